"""``.. kdkit-mutants:: LAB`` lists a lab's mutants (qemu/harness/lab.py's
mutants()): each patch's number and the defect its "Mutant:" line
describes. make check grades every one and requires it to lose points.
Instructor pages only."""
import os
import re
import sys

from docutils import nodes
from docutils.parsers.rst import Directive

KIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(KIT, "qemu"))
from harness import lab  # noqa: E402


class KdkitMutants(Directive):
    required_arguments = 1

    def run(self):
        items = nodes.enumerated_list()
        for path in lab.mutants(self.arguments[0]).values():
            with open(path, encoding="utf-8") as f:
                m = re.search(r"^Mutant: (.*)$", f.read(), re.M)
            name = os.path.basename(path)
            item = nodes.list_item()
            item += nodes.paragraph("", "", nodes.Text((m[1] if m else name) + " "),
                                    nodes.literal(text=name))
            items += item
        return [items]


def setup(app):
    app.add_directive("kdkit-mutants", KdkitMutants)
    return {"parallel_read_safe": True}
