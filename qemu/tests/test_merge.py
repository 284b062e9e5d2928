"""Grading past one machine: SHARD=i/N picks a share of the submissions,
and grade-merge joins the shards' outputs (grader/grade.py, merge.py)."""
import csv
import os
import xml.etree.ElementTree as ET

import pytest

from grader import grade, merge
from harness import lab

STUDENTS = [f"student{n:03}" for n in range(200)] + ["zoë", "a b"]


def test_shards_cover_every_student_once():
    for n in (1, 2, 3, 7):
        shares = [[s for s in STUDENTS if grade.in_shard(s, (i, n))] for i in range(1, n + 1)]
        assert sorted(sum(shares, [])) == sorted(STUDENTS)
        # Deterministic, and roughly even.
        assert shares == [[s for s in STUDENTS if grade.in_shard(s, (i, n))] for i in range(1, n + 1)]
        assert min(map(len, shares)) > len(STUDENTS) / n / 2


@pytest.mark.parametrize("spec", ["", "0/3", "4/3", "1", "a/b", "1/0"])
def test_a_bad_shard_is_refused_with_an_example(spec):
    with pytest.raises(lab.LabError, match=r"is not i/N .*SHARD=1/4"):
        grade.shard_of(spec)


def shard(root, name, students, labs=("hello",)):
    out = root / name
    out.mkdir()
    with open(out / "grades.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", *labs, "total", "flagged"])
        for s, points in students.items():
            w.writerow([s, *[points] * len(labs), points * len(labs), ""])
            (out / s / "hello").mkdir(parents=True)
            (out / s / "results.json").write_text(f'{{"score": {points}}}')
    root_el = ET.Element("testsuites")
    for s in students:
        ET.SubElement(root_el, "testsuite", name=f"{s}.hello")
    ET.ElementTree(root_el).write(out / "junit.xml", encoding="unicode")
    return str(out)


def test_merge_joins_grades_junit_and_folders(tmp_path):
    a = shard(tmp_path, "g1", {"bob": 7, "ann": 10})
    b = shard(tmp_path, "g2", {"cid": 3})
    c = shard(tmp_path, "g3", {})
    assert merge.main(["--out", str(tmp_path / "all"), a, b, c]) == 0
    with open(tmp_path / "all" / "grades.csv") as f:
        assert [(r["student"], r["total"]) for r in csv.DictReader(f)] == [
            ("ann", "10"), ("bob", "7"), ("cid", "3")]
    names = [s.get("name") for s in ET.parse(tmp_path / "all" / "junit.xml").getroot()]
    assert names == ["ann.hello", "bob.hello", "cid.hello"]
    assert (tmp_path / "all" / "cid" / "results.json").read_text() == '{"score": 3}'


def test_merge_refuses_overlapping_or_mismatched_shards(tmp_path, capsys):
    a = shard(tmp_path, "g1", {"bob": 7})
    b = shard(tmp_path, "g2", {"bob": 7})
    c = shard(tmp_path, "g3", {"cid": 1}, labs=("hello", "vser"))
    assert merge.main(["--out", str(tmp_path / "x"), a, b]) == 2
    assert "bob was graded in both" in capsys.readouterr().err
    assert merge.main(["--out", str(tmp_path / "x"), a, c]) == 2
    assert "graded other labs" in capsys.readouterr().err
    assert merge.main(["--out", str(tmp_path / "x"), str(tmp_path)]) == 2
    assert "has no grades.csv" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x" / "grades.csv")
