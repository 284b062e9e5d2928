"""distro-check's record: each run replaces its own row and no other."""
from selfcheck import platforms


def test_a_run_replaces_its_own_row_and_keeps_the_others(tmp_path):
    inc = str(tmp_path / "platforms.inc")
    platforms.record("Debian 12 (bookworm)", "test", "9 passed, 0 failed", 300.7, "Python 3.11.2", inc)
    platforms.record("Debian 13 (trixie)", "gradescope", "10 of 10", 200, "Python 3.13.5", inc)
    platforms.record("Debian 12 (bookworm)", "test", "FAILED (exit 1) at:\n make test", 12, "", inc)
    rows = platforms.read(inc)
    assert sorted(rows) == [("Debian 12 (bookworm)", "test"), ("Debian 13 (trixie)", "gradescope")]
    mine = rows[("Debian 12 (bookworm)", "test")]
    assert mine[2:4] == ["FAILED (exit 1) at: make test", "12 s"]
    # Each row says when, at which commit and on what machine.
    assert " at " in mine[5] and "CPUs" in mine[5]
    assert rows[("Debian 13 (trixie)", "gradescope")][2] == "10 of 10"


def test_the_versions_are_read_from_what_the_probe_printed():
    probed = ("Python 3.13.5\nQEMU emulator version 10.0.13 (Debian 1:10.0.3+ds-0+deb13u1)\n"
              "14.2.0\n")
    assert platforms.versions(probed) == "Python 3.13.5, QEMU 10.0.13, gcc 14.2.0"
    assert platforms.versions("sh: 1: python3: not found\n") == "not reached"
