"""``.. kdkit-make-targets::`` renders the Makefile's targets and their
``## `` descriptions, the same lines `make help` prints, so the reference
cannot list a target that does not exist or miss one that does."""
import os
import re

from docutils import nodes
from docutils.parsers.rst import Directive

from kdkit_table import table

KIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = re.compile(r"^([a-z_.-]+):.*## (.*)$")


def targets(makefile=os.path.join(KIT, "Makefile")):
    """(target, description) for each documented target, in file order."""
    with open(makefile, encoding="utf-8") as f:
        return [m.groups() for m in map(TARGET.match, f) if m]


class KdkitMakeTargets(Directive):
    def run(self):
        self.state.document.settings.record_dependencies.add(os.path.join(KIT, "Makefile"))
        rows = [[nodes.literal(text=f"make {name}"), what] for name, what in targets()]
        return [table((18, 62), ["target", "what it does"], rows)]


def setup(app):
    app.add_directive("kdkit-make-targets", KdkitMakeTargets)
    return {"parallel_read_safe": True}
