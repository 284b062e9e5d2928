"""A lab's rubric: kunit/<lab>/rubric.toml, beside the tests it scores.

Each [[item]] names cases ("suite.case", or "suite" for all its cases),
its points, a hint for students, and optionally a visibility (as
Gradescope has them) and an item it needs: a failed prerequisite zeroes
it, as gradelib's parent= does. Every case of the lab belongs to exactly
one item, so that a new case cannot go unscored.
"""
import os
import sys
from typing import NamedTuple

from harness import lab as labmod
from harness.ktap import PASSED

if sys.version_info >= (3, 11):
    import tomllib
else:   # Python 3.9 and 3.10 (Ubuntu 22.04) read TOML with tomli
    import tomli as tomllib

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
KEYS = {"name", "cases", "points", "hint", "visibility", "needs"}


class RubricError(Exception):
    """The rubric file is wrong: the message names the file and the item."""


class Item(NamedTuple):
    name: str
    cases: tuple        # ((suite, case), ...)
    points: float
    hint: str
    visibility: str = "visible"
    needs: str = ""


class Score(NamedTuple):
    item: Item
    points: float       # earned
    passed: bool
    why: str            # for a failed item: which case, or which prerequisite


def path(lab):
    return os.path.join(labmod.KIT, "kunit", lab, "rubric.toml")


def _read(rubric_path, hidden=False):
    where = os.path.relpath(rubric_path, labmod.KIT)
    try:
        with open(rubric_path, "rb") as f:
            raw = tomllib.load(f).get("item", [])
    except FileNotFoundError:
        raise RubricError(f"{where} is missing: every lab needs a rubric") from None
    except tomllib.TOMLDecodeError as e:
        raise RubricError(f"{where}: {e}") from None
    # An instructor's private items are hidden unless they say otherwise.
    return [dict({"visibility": "hidden"} if hidden else {}, **e) for e in raw]


def load(lab, rubric_path=None):
    """The lab's items, checked against the cases its test sources declare,
    followed by those of the instructor's private folder, if there is one."""
    rubric_path = rubric_path or path(lab)
    where = os.path.relpath(rubric_path, labmod.KIT)
    raw = _read(rubric_path)
    private = labmod.private_dir(lab)
    if private and not rubric_path.startswith(private):
        raw += _read(os.path.join(private, "rubric.toml"), hidden=True)
    expected = labmod.expected_cases(lab)
    owner, items = {}, []
    for n, entry in enumerate(raw, 1):
        name = entry.get("name") or f"item {n}"
        bad = set(entry) - KEYS
        if bad:
            raise RubricError(f"{where}: {name}: unknown key(s) {', '.join(sorted(bad))}")
        for key in ("name", "cases", "points", "hint"):
            if key not in entry:
                raise RubricError(f"{where}: {name}: '{key}' is missing")
        points = entry["points"]
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            raise RubricError(f"{where}: {name}: points must be a number, 0 or more")
        visibility = entry.get("visibility", "visible")
        if visibility not in VISIBILITIES:
            raise RubricError(f"{where}: {name}: visibility must be one of {', '.join(VISIBILITIES)}")
        needs = entry.get("needs", "")
        if needs and needs not in {i.name for i in items}:
            raise RubricError(f"{where}: {name}: needs '{needs}', which is not an item above it")
        cases = []
        for sel in entry["cases"]:
            suite, _, case = sel.partition(".")
            known = dict(expected).get(suite)
            if known is None or (case and case not in known):
                raise RubricError(f"{where}: {name}: no case '{sel}' in the lab's suites")
            for c in ([case] if case else known):
                if (suite, c) in owner:
                    raise RubricError(f"{where}: {suite}.{c} is in both '{owner[suite, c]}' and '{name}'")
                owner[suite, c] = name
                cases.append((suite, c))
        items.append(Item(name, tuple(cases), points, entry["hint"], visibility, needs))
    missing = [f"{s}.{c}" for s, cs in expected for c in cs if (s, c) not in owner]
    if missing:
        raise RubricError(f"{where}: no item scores {', '.join(missing)}")
    return items


def moot(items, outcome):
    """The cases with no result yet that cannot change the score: each item
    that counts them has already lost a case, or needs an item that has.
    Grading need not run them (a driver that hangs in every read would
    otherwise cost a boot for each case that reads)."""
    lost, owners = {}, {}
    for item in items:
        lost[item.name] = (any(c in outcome.cases[s] and outcome.cases[s][c].status != PASSED
                               for s, c in item.cases)
                           or bool(item.needs and lost[item.needs]))
        for sc in item.cases:
            owners.setdefault(sc, []).append(item.name)
    return sorted((s, c) for (s, c), names in owners.items()
                  if c not in outcome.cases[s] and all(lost[n] for n in names))


def score(items, outcome):
    """Score each item from a results.Outcome, prerequisites first."""
    scored, passed = [], {}
    for item in items:
        failed = [(s, c) for s, c in item.cases if outcome.cases[s].get(c) is None
                  or outcome.cases[s][c].status != PASSED]
        unhealthy = sorted({s for s, _ in item.cases} & set(outcome.health))
        if item.needs and not passed[item.needs]:
            why = f"needs '{item.needs}', which did not pass"
        elif failed:
            s, c = failed[0]
            status = outcome.cases[s][c].status if c in outcome.cases[s] else "NOT RUN"
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            why = f"{s}.{c}: {status}{more}"
        elif unhealthy:
            why = f"the kernel reported a problem while {unhealthy[0]} ran"
        else:
            why = ""
        passed[item.name] = not why
        scored.append(Score(item, item.points if not why else 0, not why, why))
    return scored
