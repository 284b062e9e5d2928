"""End to end on the kit kernel: bad modules are contained, bad input is
answered in one line. These boot QEMU, so they need 'make setup' first."""
import os
import re
import subprocess
import sys
import time

import pytest

from harness import lab, runner

# The hello lab's cases, as its suites list them (never a figure restated).
HELLO_CASES = lab.case_count("hello")

HERE = os.path.dirname(os.path.abspath(__file__))
KIT = lab.KIT
FIXTURES = os.path.join(HERE, "fixtures")


def fixture(name, tmp_path):
    """The hello solution with one fixture's defect, in a folder of its own."""
    src = tmp_path / "src"
    src.mkdir()
    return lab.patched_solution("hello", os.path.join(FIXTURES, f"{name}.patch"), str(src))


def kdkit(*args, timeout=None):
    env = dict(os.environ, KDKIT_TIMEOUT=str(timeout)) if timeout else None
    start = time.monotonic()
    proc = subprocess.run([sys.executable, os.path.join(KIT, "qemu", "kdkit.py"), *args],
                          capture_output=True, text=True, cwd=KIT, env=env)
    return proc, time.monotonic() - start


def test_a_panic_in_init_is_reported_and_other_cases_still_run(tmp_path):
    proc, _secs = kdkit("test", "hello", "--src", fixture("hello-panic", tmp_path))
    assert proc.returncode == 1
    assert "[CRASHED] hello_module_init_then_exit_succeeds" in proc.stdout
    assert "Kernel panic - not syncing: hello: fixture panics in init" in proc.stdout
    # The crash cost no other result: the next case ran in a fresh boot.
    assert "[CRASHED] hello_module_loads_twice" in proc.stdout
    assert "[PASSED] hello_greet_formats_name" in proc.stdout
    module = len(dict(lab.expected_cases("hello"))["hello_module"])
    assert proc.stdout.rstrip().endswith(f"{HELLO_CASES - module} passed, {module} failed")
    assert "console logs kept in" in proc.stdout


def test_a_spin_in_init_is_caught_by_the_soft_lockup_detector(tmp_path):
    proc, _secs = kdkit("test", "hello", "--src", fixture("hello-spin", tmp_path))
    assert proc.returncode == 1
    assert "[CRASHED] hello_module_init_then_exit_succeeds" in proc.stdout
    assert "soft lockup" in proc.stdout
    module = len(dict(lab.expected_cases("hello"))["hello_module"])
    assert proc.stdout.rstrip().endswith(f"{HELLO_CASES - module} passed, {module} failed")


def test_a_sleep_loop_in_init_ends_at_the_wall_clock_limit(tmp_path):
    # Below the 15 s hung-task timeout, so the host's limit acts first.
    limit = 10
    proc, secs = kdkit("test", "hello", "--src", fixture("hello-sleep", tmp_path), timeout=limit)
    assert proc.returncode == 1
    assert "[CRASHED] hello_module_init_then_exit_succeeds" in proc.stdout
    assert f"the run timed out after {limit} s" in proc.stdout
    # Two boots hit the limit (one per case); the build and the rest are quick.
    assert secs < 2 * limit + 30


def test_a_warning_fails_the_case_it_came_in_even_when_every_expectation_holds(tmp_path):
    proc, _secs = kdkit("test", "hello", "--src", fixture("hello-warn", tmp_path))
    assert proc.returncode == 1
    assert "[FAILED] hello_greet_null_name_returns_einval" in proc.stdout
    assert "the kernel reported a problem while this case ran:" in proc.stdout
    # The other cases of the suite keep their results.
    assert "[PASSED] hello_greet_formats_name" in proc.stdout
    assert "kernel health" not in proc.stdout
    # The report points at the student's own file, not the build copy.
    assert re.search(r"WARNING: CPU: 0 PID: \d+ at \S+/src/hello.c:\d+ hello_greet", proc.stdout)
    assert "============ [FAILED] hello_greet ============" in proc.stdout
    assert "============ [PASSED] hello_module ============" in proc.stdout
    assert proc.stdout.rstrip().endswith(f"{HELLO_CASES - 1} passed, 1 failed")


@pytest.mark.parametrize("args, message", [
    (["test", "nosuch"], "unknown lab 'nosuch'; the labs are: hello"),
    (["test", ""], "say which lab, e.g. 'make test LAB=hello'"),
    (["test", "hello", "--src", FIXTURES], "has no hello/hello.c"),
    (["test", "hello", "--src", "/nonexistent"], "SRC=/nonexistent is not a folder"),
])
def test_bad_input_gets_one_line_naming_the_next_step(args, message):
    proc, _secs = kdkit(*args)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_file_that_does_not_compile_shows_the_compiler_and_build_failed(tmp_path):
    (tmp_path / "hello.c").write_text("int broken = ;\n")
    proc, _secs = kdkit("test", "hello", "--src", str(tmp_path))
    assert proc.returncode == 2
    assert f"{tmp_path}/hello.c:1:14: error" in proc.stderr
    assert proc.stderr.rstrip().endswith("hello: build failed; fix the errors above and run the command again")
    assert "Traceback" not in proc.stderr


def test_a_userspace_suite_that_changed_before_it_ran_is_not_run(monkeypatch):
    """/init hashes each test program against the plan before it runs it:
    here the plan's hashes are wrong, as they would be for a program a
    module rewrote."""
    monkeypatch.setattr(runner, "_sha256", lambda path: "0" * 64)
    run = runner.run_lab("vser", os.path.join(KIT, "solutions", "vser"))
    user = run.outcome.cases["vser_user"]
    assert user and all(c.status != "PASSED" for c in user.values())
    assert any("changed before it ran" in n for n in run.outcome.notes)
    assert run.outcome.cases["vser_fops"] and all(
        c.status == "PASSED" for c in run.outcome.cases["vser_fops"].values())


def test_a_driver_that_floods_in_every_case_costs_two_boots_a_suite(tmp_path, monkeypatch):
    """Every vser case runs init; an init that floods the log would cost a
    boot a case. Two hung or flooded boots in one suite end that suite."""
    monkeypatch.setattr(runner, "TIMEOUT", 8.0)     # a flood boot ends here or at 16 MB
    src = tmp_path / "vser"
    src.mkdir()
    with open(os.path.join(KIT, "solutions", "vser", "vser.c")) as f:
        text = f.read()
    head = "static int __init vser_init(void)\n{\n"
    assert head in text
    flood = head + "\tfor (int n = 0; n < 2000000; n++)\n\t\tpr_info(\"flood %d\\n\", n);\n"
    (src / "vser.c").write_text(text.replace(head, flood, 1))
    start = time.monotonic()
    run = runner.run_lab("vser", str(src))
    suites = len(run.outcome.plan)
    assert run.boots <= 2 * suites + 1
    assert any("hung or flooded the kernel log, so the rest of" in n for n in run.outcome.notes)
    assert time.monotonic() - start < runner.LAB_BUDGET + 30


def test_two_runs_of_one_source_at_once_both_build(tmp_path):
    # A new folder: both runs build it from nothing, at the same time.
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.c").write_text(open(os.path.join(KIT, "solutions", "hello", "hello.c")).read())
    runs = [subprocess.Popen([sys.executable, os.path.join(KIT, "qemu", "kdkit.py"), "test",
                              "hello", "--src", str(src)], cwd=KIT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    outs = [run.communicate()[0] for run in runs]
    for run, out in zip(runs, outs):
        assert run.returncode == 0, out
        assert out.rstrip().endswith(f"{HELLO_CASES} passed, 0 failed")
