"""make test CASE=, make watch and make shell PARAMS=: running some of a lab, again on
each save, or with other parameters."""
import os
import re

import pytest

import kdkit
from harness import lab

KIT = lab.KIT


def test_case_globs_name_suites_cases_or_both():
    assert lab.selected_cases("hello", "hello_module") == [
        ("hello_module", dict(lab.expected_cases("hello"))["hello_module"])]
    assert lab.selected_cases("hello", "*_einval, hello_module.*twice") == [
        ("hello_greet", ["hello_greet_null_name_returns_einval",
                         "hello_greet_empty_name_returns_einval"]),
        ("hello_module", ["hello_module_loads_twice"])]


def test_a_case_that_names_nothing_says_what_to_give():
    with pytest.raises(lab.LabError, match=r"CASE=nope names no case of hello: .*e\.g\. CASE=hello_"):
        lab.selected_cases("hello", "nope")


def test_a_run_of_some_cases_runs_only_those(capsys):
    code = kdkit.main(["test", "hello", "--src", os.path.join(KIT, "solutions"),
                       "--case", "hello_greet_exact_fit_succeeds"])
    out = capsys.readouterr().out
    assert code == 0
    assert "[PASSED] hello_greet_exact_fit_succeeds" in out
    assert "hello_module_loads_twice" not in out
    total = lab.case_count("hello")
    assert out.rstrip().endswith(f"1 passed, 0 failed; {total - 1} left out by "
                                 "CASE=hello_greet_exact_fit_succeeds (make test without CASE= "
                                 "runs them all)")


def test_a_piped_shell_gets_every_character_and_the_modules_parameters():
    import subprocess
    import sys
    typed = (b"cat /sys/module/vser/parameters/ndevs\nls /dev/vser*\n"
             # A reader asleep in vser_read(): its stack, decoded.
             b"cat /dev/vser0 &\nsleep 1\ncat /proc/$!/stack\nreboot -f\n")
    out = subprocess.run([sys.executable, os.path.join(KIT, "qemu", "kdkit.py"), "shell", "vser",
                          "--src", os.path.join(KIT, "solutions"), "--params", "ndevs=3"],
                         input=typed, capture_output=True, timeout=120).stdout.decode(errors="replace")
    assert "cat /sys/module/vser/parameters/ndevs\r\n3\r\n" in out
    assert "/dev/vser2" in out and "/dev/vser3" not in out
    assert re.search(r"vser_read\+0x\w+/0x\w+ \[vser\] \(\S*solutions/vser/vser\.c:\d+\)", out)


def test_shell_params_must_be_name_equals_value():
    assert kdkit.module_params("ndevs=4 fifo_size=64") == " ndevs=4 fifo_size=64"
    with pytest.raises(lab.LabError, match="PARAMS: 'ndevs=4;reboot' is not name=value"):
        kdkit.module_params("ndevs=4;reboot")


def test_watch_reruns_on_save_with_the_failing_cases_first(tmp_path):
    import shutil
    import subprocess
    import sys
    src = tmp_path / "hello"
    src.mkdir()
    shutil.copy(os.path.join(KIT, "solutions", "hello", "hello.c"), src)
    c = src / "hello.c"
    good = c.read_text()
    c.write_text(good.replace("return -EINVAL;", "return -EIO;", 1))     # a bug
    watch = subprocess.Popen([sys.executable, os.path.join(KIT, "qemu", "kdkit.py"), "watch", "hello",
                              "--src", str(src), "--rounds", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    try:
        for line in watch.stdout:
            out.append(line)
            if line.startswith("kdkit: watching"):
                c.write_text(good)      # the student's fix, saved
        watch.wait(timeout=120)
    finally:
        watch.kill()
    text = "".join(out)
    first, second = text.split("kdkit: watching", 1)
    assert ", 0 failed" not in first.splitlines()[-1]
    # After the save: the cases that failed first, then the others, all passing now.
    assert "that failed last time first" in second and "kdkit: now the others" in second
    failed_first = second.split("kdkit: now the others")[0]
    assert "left out by CASE=" in failed_first and ", 0 failed" in failed_first
    assert watch.returncode == 0


def test_watch_ends_on_a_run_of_the_file_as_it_is_on_disk(tmp_path):
    """Two saves close together: the second lands while the first one's
    run is under way. Watch runs again once that run ends, so the last
    result is always the file's as it is now."""
    import queue
    import shutil
    import threading
    import subprocess
    import sys
    import time
    src = tmp_path / "hello"
    src.mkdir()
    shutil.copy(os.path.join(KIT, "solutions", "hello", "hello.c"), src)
    c = src / "hello.c"
    good = c.read_text()
    bad = good.replace("return -EINVAL;", "return -EIO;", 1)
    c.write_text(bad)
    watch = subprocess.Popen([sys.executable, os.path.join(KIT, "qemu", "kdkit.py"), "watch", "hello",
                              "--src", str(src)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Lines come through a thread: a bounded wait for each, never a poll
    # of a pipe whose lines may already sit in a buffer.
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in watch.stdout] + [lines.put("")],
                     daemon=True).start()
    out, saves, deadline = [], 0, time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                break
            if not line:
                break
            out.append(line)
            if line.startswith("kdkit: watching") and saves == 0:
                # Two saves 50 ms apart, as an editor's save-all makes: the
                # first starts a run, the second lands while it builds.
                c.write_text(bad + "/* still wrong */\n")
                time.sleep(0.05)
                c.write_text(good)
                saves = 2
            elif saves == 2 and re.match(r"^\d+ passed, 0 failed", line):
                break
    finally:
        watch.kill()
        watch.wait()
    text = "".join(out)
    assert saves == 2 and re.search(r"^\d+ passed, 0 failed", text.split("kdkit: watching", 1)[1],
                                    re.M), text[-3000:]
