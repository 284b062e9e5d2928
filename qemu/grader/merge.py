"""make grade-merge: join the outputs of sharded grades (make grade
SHARD=i/N, one a CI job) into one: grades.csv, junit.xml, and each
student's folder.

  python3 -m grader.merge --out DIR SHARD_OUT...
"""
import argparse
import csv
import os
import shutil
import sys
import xml.etree.ElementTree as ET


class MergeError(Exception):
    """Shards that cannot be joined: the message says which and why."""


def merge(shards, out):
    """Join shards (folders make grade wrote) into out; the student count."""
    header, rows, suites, owner = None, [], [], {}
    for shard in shards:
        path = os.path.join(shard, "grades.csv")
        if not os.path.isfile(path):
            raise MergeError(f"{shard} has no grades.csv: is it a make grade OUT= folder?")
        with open(path, newline="") as f:
            table = list(csv.reader(f))
        if header is not None and table[0] != header:
            raise MergeError(f"{shard} graded other labs ({', '.join(table[0][1:-2])}) than "
                             f"{shards[0]} ({', '.join(header[1:-2])}); grade every shard with one LABS=")
        header = table[0]
        for row in table[1:]:
            if row[0] in owner:
                raise MergeError(f"{row[0]} was graded in both {owner[row[0]]} and {shard}: "
                                 "give each shard the same SUBMISSIONS= and its own SHARD=i/N")
            owner[row[0]] = shard
            rows.append(row)
        suites += list(ET.parse(os.path.join(shard, "junit.xml")).getroot())
    os.makedirs(out, exist_ok=True)
    for student, shard in owner.items():
        dest = os.path.join(out, student)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(os.path.join(shard, student), dest, symlinks=True)
    with open(os.path.join(out, "grades.csv"), "w", newline="") as f:
        csv.writer(f).writerows([header] + sorted(rows))
    root = ET.Element("testsuites")
    root.extend(sorted(suites, key=lambda s: s.get("name", "")))
    ET.ElementTree(root).write(os.path.join(out, "junit.xml"), encoding="unicode")
    return len(rows)


def main(argv):
    p = argparse.ArgumentParser(prog="grade-merge", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("shards", nargs="+")
    args = p.parse_args(argv)
    try:
        n = merge(args.shards, args.out)
    except (MergeError, OSError, ET.ParseError) as e:
        print(f"grade-merge: {e}", file=sys.stderr)
        return 2
    print(f"grade-merge: {n} submission(s) from {len(args.shards)} shard(s); results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
