"""``.. kdkit-cases:: LAB`` renders a lab's test suites and cases, read
from the same sources the harness reads (qemu/lab.py), so the page lists
exactly what `make test` runs."""
import os
import sys

from docutils import nodes
from docutils.parsers.rst import Directive

KIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(KIT, "qemu"))
import lab  # noqa: E402


class KdkitCases(Directive):
    required_arguments = 1

    def run(self):
        name = self.arguments[0]
        table = nodes.table()
        group = nodes.tgroup(cols=3)
        table += group
        for width in (20, 10, 40):
            group += nodes.colspec(colwidth=width)
        body = nodes.tbody()
        head = nodes.thead()
        head += self._row(["suite", "kind", "case"], header=True)
        group += head
        group += body
        for suite, cases in lab.expected_cases(name):
            kind = "userspace" if suite.endswith("_user") else "KUnit"
            for case in cases:
                body += self._row([suite, kind, case])
        return [table]

    @staticmethod
    def _row(cells, header=False):
        row = nodes.row()
        for text in cells:
            entry = nodes.entry()
            content = nodes.Text(text) if header else nodes.literal(text=text)
            entry += nodes.paragraph("", "", content)
            row += entry
        return row


def setup(app):
    app.add_directive("kdkit-cases", KdkitCases)
    return {"parallel_read_safe": True}
