"""``.. kdkit-skeleton:: LAB/FILE`` shows the skeleton as the kit hands it
out: generated from solutions/ (qemu/course/skelgen.py), never read from labs/,
where a student's own edits would show up as "the skeleton"."""
import os
import sys

from docutils import nodes
from docutils.parsers.rst import Directive

KIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(KIT, "qemu"))
from course import skelgen  # noqa: E402


class KdkitSkeleton(Directive):
    required_arguments = 1

    def run(self):
        path = os.path.join(KIT, "solutions", self.arguments[0])
        self.state.document.settings.record_dependencies.add(path)
        with open(path, encoding="utf-8") as f:
            text = skelgen.strip(f.read(), path).expandtabs(8)
        block = nodes.literal_block(text, text, language="c", linenos=True)
        return [block]


def setup(app):
    app.add_directive("kdkit-skeleton", KdkitSkeleton)
    return {"parallel_read_safe": True}
