"""``.. kdkit-mutants:: LAB`` lists a lab's mutants (kunit/<lab>/mutants/):
each patch's number and the defect its "Mutant:" line describes. make check
grades every one and requires it to lose points. Instructor pages only."""
import glob
import os
import re

from docutils import nodes
from docutils.parsers.rst import Directive

KIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mutants(lab):
    """(number, file name, description) of each mutant, in number order."""
    found = []
    for path in glob.glob(os.path.join(KIT, "kunit", lab, "mutants", "*.patch")):
        with open(path, encoding="utf-8") as f:
            m = re.search(r"^Mutant: (.*)$", f.read(), re.M)
        name = os.path.basename(path)
        found.append((int(re.match(r"\d+", name)[0]), name, m[1] if m else name))
    return sorted(found)


class KdkitMutants(Directive):
    required_arguments = 1

    def run(self):
        items = nodes.enumerated_list()
        for number, name, what in mutants(self.arguments[0]):
            item = nodes.list_item()
            item += nodes.paragraph("", "", nodes.Text(what + " "), nodes.literal(text=name))
            items += item
        return [items]


def setup(app):
    app.add_directive("kdkit-mutants", KdkitMutants)
    return {"parallel_read_safe": True}
