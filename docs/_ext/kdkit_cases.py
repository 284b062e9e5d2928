"""``.. kdkit-cases:: LAB`` renders a lab's test suites and cases, read
from the same sources the harness reads (qemu/harness/lab.py), so the page lists
exactly what `make test` runs."""
import os
import sys

from docutils import nodes
from docutils.parsers.rst import Directive

from kdkit_table import table

KIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(KIT, "qemu"))
from harness import lab  # noqa: E402


class KdkitCases(Directive):
    required_arguments = 1

    def run(self):
        rows = []
        for suite, cases in lab.expected_cases(self.arguments[0]):
            kind = "userspace" if suite.endswith("_user") else "KUnit"
            rows += [[nodes.literal(text=t) for t in (suite, kind, case)] for case in cases]
        return [table((20, 10, 40), ["suite", "kind", "case"], rows)]


def setup(app):
    app.add_directive("kdkit-cases", KdkitCases)
    return {"parallel_read_safe": True}
