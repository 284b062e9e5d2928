"""qemu/'s layout: five parts, each importing only the parts below it.

kernel/ is the bottom; harness/ (the engine) uses it; the student's
command line (kdkit.py), grader/ and course/ use the engine; selfcheck/
may use them all but the student's command line, which nothing imports.
"""
import ast
import glob
import os

import pytest

from harness.lab import KIT

QEMU = os.path.join(KIT, "qemu")
PARTS = ("kernel", "harness", "grader", "course", "selfcheck")
# What each part may import of the kit, besides itself.
MAY_USE = {
    "kernel": set(),
    "harness": {"kernel"},
    "kdkit": {"kernel", "harness"},
    "grader": {"kernel", "harness"},
    "course": {"kernel", "harness"},
    "selfcheck": {"kernel", "harness", "grader", "course"},
}


def part_of(module):
    return module.split(".")[0]


def kit_module(path):
    rel = os.path.relpath(path, QEMU)[:-len(".py")].split(os.sep)
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def imports_of(path):
    """The kit modules a file imports, at any depth of its code."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # from harness import lab: harness.lab if lab is a module.
            names = [f"{node.module}.{a.name}" if os.path.isfile(
                os.path.join(QEMU, *node.module.split("."), a.name + ".py")) else node.module
                for a in node.names]
        else:
            continue
        found |= {n for n in names if part_of(n) in MAY_USE}
    return found


def graph(paths):
    return {kit_module(p): imports_of(p) for p in paths}


def code():
    return [p for p in glob.glob(os.path.join(QEMU, "**", "*.py"), recursive=True)
            if os.path.relpath(p, QEMU).split(os.sep)[0] != "tests"]


def cycle(edges):
    """One import circle in edges, as a list of modules, or None."""
    state = {}

    def visit(m, path):
        state[m] = "open"
        for n in sorted(edges.get(m, ())):
            if state.get(n) == "open":
                return path[path.index(n):] + [n] if n in path else [m, n]
            if n not in state:
                found = visit(n, path + [n])
                if found:
                    return found
        state[m] = "done"
        return None

    for m in sorted(edges):
        if m not in state:
            found = visit(m, [m])
            if found:
                return found
    return None


def upward(edges):
    """Imports that reach a part the importer may not use."""
    return sorted(f"{m} imports {n}" for m, ns in edges.items() for n in ns
                  if part_of(n) != part_of(m) and part_of(n) not in MAY_USE[part_of(m)])


def test_no_import_circle_and_none_runs_up_a_layer():
    edges = graph(code())
    assert len(edges) > 20
    assert cycle(edges) is None, " -> ".join(cycle(edges))
    assert upward(edges) == []


def test_the_checks_catch_a_circle_and_an_upward_import():
    assert cycle({"harness.a": {"harness.b"}, "harness.b": {"harness.a"}}) is not None
    assert cycle({"harness.a": {"harness.b"}, "harness.b": set()}) is None
    assert upward({"harness.runner": {"kdkit"}, "kernel.source": {"harness.lab"},
                   "grader.grade": {"harness.runner"}}) == [
        "harness.runner imports kdkit", "kernel.source imports harness.lab"]


def test_the_object_check_imports_nothing_of_the_kit():
    assert imports_of(os.path.join(QEMU, "harness", "objcheck.py")) == set()


@pytest.mark.parametrize("part", PARTS)
def test_each_part_is_a_package_that_says_what_it_is_for(part):
    init = os.path.join(QEMU, part, "__init__.py")
    with open(init, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read()))
    assert doc and "\n" not in doc.strip(), f"{init}: one line saying what {part}/ is for"


def test_nothing_is_left_at_the_top_but_the_students_command_line():
    top = sorted(os.path.basename(p) for p in glob.glob(os.path.join(QEMU, "*"))
                 if os.path.isfile(p))
    assert top == ["deps.sh", "kdkit.py"]
