"""``.. kdkit-make-targets::`` renders the Makefile's targets and their
``## `` descriptions, the same lines `make help` prints, so the reference
cannot list a target that does not exist or miss one that does."""
import os
import re

from docutils import nodes
from docutils.parsers.rst import Directive

KIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = re.compile(r"^([a-z-]+):.*## (.*)$")


def targets(makefile=os.path.join(KIT, "Makefile")):
    """(target, description) for each documented target, in file order."""
    with open(makefile, encoding="utf-8") as f:
        return [m.groups() for m in map(TARGET.match, f) if m]


class KdkitMakeTargets(Directive):
    def run(self):
        self.state.document.settings.record_dependencies.add(os.path.join(KIT, "Makefile"))
        table = nodes.table()
        group = nodes.tgroup(cols=2)
        table += group
        group += nodes.colspec(colwidth=18)
        group += nodes.colspec(colwidth=62)
        head = nodes.thead()
        head += self._row(nodes.Text("target"), nodes.Text("what it does"))
        body = nodes.tbody()
        for name, what in targets():
            body += self._row(nodes.literal(text=f"make {name}"), nodes.Text(what))
        group += head
        group += body
        return [table]

    @staticmethod
    def _row(*cells):
        row = nodes.row()
        for content in cells:
            entry = nodes.entry()
            entry += nodes.paragraph("", "", content)
            row += entry
        return row


def setup(app):
    app.add_directive("kdkit-make-targets", KdkitMakeTargets)
    return {"parallel_read_safe": True}
