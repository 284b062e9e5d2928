"""Rubrics: every lab's file is valid, and scoring follows its rules."""
import pytest

from grader import rubric
from harness import lab, results
from harness.ktap import FAILED, PASSED, Case


@pytest.mark.parametrize("name", lab.labs())
def test_every_lab_has_a_rubric_that_scores_every_case(name):
    items = rubric.load(name)
    scored = {c for i in items for c in i.cases}
    assert scored == {(s, c) for s, cs in lab.expected_cases(name) for c in cs}
    assert sum(i.points for i in items) > 0


def outcome_of(name, failing=(), health=()):
    o = results.Outcome(lab.expected_cases(name))
    for s, cs in o.plan:
        for c in cs:
            o.cases[s][c] = Case(c, FAILED if f"{s}.{c}" in failing else PASSED, [])
    for s in health:
        o.health[s] = [["WARNING: something"]]
    return o


def test_all_passing_scores_everything():
    items = rubric.load("hello")
    assert sum(s.points for s in rubric.score(items, outcome_of("hello"))) == 10


def test_a_failed_prerequisite_zeroes_its_dependents():
    items = rubric.load("hello")
    scored = {s.item.name: s for s in rubric.score(
        items, outcome_of("hello", failing={"hello_greet.hello_greet_formats_name"}))}
    assert scored["greeting"].points == 0 and "hello_greet_formats_name: FAILED" in scored["greeting"].why
    assert scored["greeting errors"].points == 0 and "needs 'greeting'" in scored["greeting errors"].why
    assert scored["module init and exit"].points == 3


def test_a_kernel_report_fails_the_items_of_that_suite():
    scored = rubric.score(rubric.load("hello"), outcome_of("hello", health={"hello_module"}))
    assert [s.item.name for s in scored if not s.passed] == ["module init and exit"]


def write(tmp_path, text):
    p = tmp_path / "rubric.toml"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("text, message", [
    ('[[item]]\nname = "a"\ncases = ["hello_greet"]\npoints = 1\n', "'hint' is missing"),
    ('[[item]]\nname = "a"\ncases = ["nope.x"]\npoints = 1\nhint = "h"\n', "no case 'nope.x'"),
    ('[[item]]\nname = "a"\ncases = ["hello_greet"]\npoints = -1\nhint = "h"\n', "points must be"),
    ('[[item]]\nname = "a"\ncases = ["hello_greet"]\npoints = 1\nhint = "h"\nneeds = "b"\n',
     "needs 'b'"),
    ('[[item]]\nname = "a"\ncases = ["hello_greet", "hello_module"]\npoints = 1\nhint = "h"\n'
     'visibility = "sometimes"\n', "visibility must be"),
    ('[[item]]\nname = "a"\ncases = ["hello_greet"]\npoints = 1\nhint = "h"\n', "no item scores"),
    ('[[item]]\nname = "a"\ncases = ["hello_greet", "hello_greet"]\npoints = 1\nhint = "h"\n',
     "is in both"),
])
def test_a_wrong_rubric_is_refused_with_a_reason(tmp_path, text, message):
    with pytest.raises(rubric.RubricError, match=message):
        rubric.load("hello", write(tmp_path, text))


def test_cases_that_cannot_change_the_score_are_moot():
    items = rubric.load("vser")
    o = results.Outcome(lab.expected_cases("vser"))
    o.cases["vser_fops"]["vser_read_returns_what_was_written"] = Case(
        "vser_read_returns_what_was_written", FAILED, [])
    moot = rubric.moot(items, o)
    # The rest of the failed item, and what needs it, cannot score...
    assert ("vser_fops", "vser_read_short_leaves_the_rest") in moot
    assert ("vser_user", "vser_user_two_readers_one_byte") in moot
    # ...but what does not need it still can, and ran cases are settled.
    assert ("vser_fops", "vser_ioctl_baud_round_trips") not in moot
    assert ("vser_user", "vser_user_minor_past_the_ports_is_no_device") not in moot
    assert ("vser_fops", "vser_read_returns_what_was_written") not in moot
    o.settle(moot, "cannot change the grade")
    assert o.cases["vser_user"]["vser_user_two_readers_one_byte"].log == ["not run: cannot change the grade"]
    assert rubric.moot(items, outcome_of("vser")) == []
