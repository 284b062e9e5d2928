#!/usr/bin/env python3
"""kdkit's front end for students: build a lab, boot it, report. Called by
the Makefile.

  kdkit.py test  LAB [--src DIR] [--strict] [--case GLOBS]  run the lab's KUnit suites
  kdkit.py watch LAB [--src DIR] [--strict]   test again on each save
  kdkit.py shell LAB [--src DIR] [--strict] [--params P]   a VM with the lab's module
  kdkit.py debug LAB [--src DIR] [--strict] [--params P]   the shell with a gdb stub
  kdkit.py gdb   LAB                          gdb on the running debug VM
  kdkit.py panel fsled                        the LEDs of a running shell
  kdkit.py bench LAB [--src DIR] [--strict]   edit-to-result, split up
  kdkit.py save  all|LAB,.. [--strict]        boot and save the labs' VMs now

Settings from the environment: KDKIT_CACHE (where kernels and builds live),
KDKIT_KEEP_LOGS (keep the console logs of a run that passed too),
KDKIT_COLD=1 (boot every run instead of restoring the saved VM,
harness/snapshot.py), and the run's own (harness/runner.py): KDKIT_TIMEOUT,
KDKIT_LAB_BUDGET, KDKIT_ACCEL, KDKIT_VMS.
"""
import argparse
import contextlib
import glob
import hashlib
import io
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from harness import decode, kbuild, ledpanel, lifetime, results, runner, snapshot, vm
from harness import lab as labmod
from harness.ktap import FAILED, PASSED, SKIPPED
from kernel import source as kernel_source


def prepare(args, with_tests=True):
    labmod.check_lab(args.lab)
    srcdir = labmod.resolve_src(args.lab, args.src)
    flavour = kernel_source.flavour(args.strict)
    kdir = kernel_source.kernel_dir(flavour)
    t0 = time.monotonic()
    bdir = kbuild.build_dir(args.lab, srcdir, flavour, "test" if with_tests else "shell")
    built, warnings, origin = kbuild.build(args.lab, srcdir, kdir, bdir, with_tests)
    if warnings.strip():
        print(warnings.rstrip())
    return kdir, built, origin, time.monotonic() - t0


def run_tests(args):
    labmod.check_lab(args.lab)
    srcdir = labmod.resolve_src(args.lab, args.src)
    plan = labmod.selected_cases(args.lab, args.case) if args.case else None
    run = runner.run_lab(args.lab, srcdir, args.strict, plan=plan)
    if run.warnings.strip():
        print(run.warnings.rstrip())
    counts = report(run.outcome, run.origin)
    failed = counts[FAILED] > 0
    if failed or os.environ.get("KDKIT_KEEP_LOGS"):
        print(f"console logs kept in {run.workdir}")
    else:
        shutil.rmtree(run.workdir, ignore_errors=True)
    left_out = labmod.case_count(args.lab) - sum(len(c) for _s, c in plan) if plan else 0
    print(f"{counts[PASSED]} passed, {counts[FAILED]} failed"
          + (f", {counts[SKIPPED]} skipped" if counts[SKIPPED] else "")
          + (f"; {left_out} left out by CASE={args.case} (make test without CASE= runs them all)"
             if left_out else ""))
    return (1 if failed else 0), run


def stamp(files):
    """What the student's files hold now, to compare with later."""
    got = {}
    for f in files:
        with contextlib.suppress(OSError), open(f, "rb") as fh:
            got[f] = hashlib.sha256(fh.read()).hexdigest()
    return got


def wait_for_save(files, since):
    """Block until one of files holds other than since (stamp()) says:
    at once if it changed already (a save while the last run ran), else at
    the next save (inotifywait, from inotify-tools). The watch is set up
    before the files are compared, so no save falls between the two."""
    cmd = ["inotifywait", "-e", "close_write", "-e", "moved_to", "-e", "create",
           *sorted({os.path.dirname(f) for f in files})]
    while True:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lifetime.bound())
        try:
            for line in proc.stderr:
                if line.startswith("Watches established"):
                    break
            if stamp(files) != since:
                return
            proc.wait()
        finally:
            proc.kill()
            proc.wait()
        if stamp(files) != since:
            return


def run_watch(args):
    """make watch: test, then again on each save of the student's files, the
    cases that failed last time first, then the others."""
    labmod.check_lab(args.lab)
    srcdir = labmod.resolve_src(args.lab, args.src)
    files = [os.path.join(srcdir, f) for f in labmod.student_files(args.lab)]

    def failed_of(names):
        """Run the named suite.case selectors (all, if none); the ones that failed."""
        _code, run = run_tests(argparse.Namespace(**{**vars(args), "case": " ".join(names)}))
        return [f"{s}.{c}" for s, cs in run.outcome.plan for c in cs
                if run.outcome.cases[s][c].status != PASSED]

    every = [f"{s}.{c}" for s, cs in labmod.expected_cases(args.lab) for c in cs]
    # What the files held when the last run started: a save during a run
    # starts the next one as soon as it ends.
    tested = stamp(files)
    failing, rounds = failed_of([]), 0
    while not args.rounds or rounds + 1 < args.rounds:
        print(f"kdkit: watching {', '.join(os.path.relpath(f) for f in files)}: "
              "save to test again, Ctrl-C to stop", flush=True)
        wait_for_save(files, tested)
        tested = stamp(files)
        rounds += 1
        if not failing:
            failing = failed_of([])
            continue
        print(f"kdkit: the {len(failing)} case(s) that failed last time first", flush=True)
        rest = [n for n in every if n not in failing]
        failing = failed_of(failing)
        if not failing and rest:
            print("kdkit: now the others", flush=True)
            failing = failed_of(rest)
    return 0


def report(outcome, origin):
    """Print the results the way kunit.py does, a line a case; the counts."""
    for line in results.report_lines(outcome, lambda l: kbuild.point_home(l, origin)):
        print(line)
    return outcome.counts()


def shell_dirs():
    return os.path.join(kernel_source.CACHE, "shell")


def running_shells():
    """The work folders of shells still running; those of shells that were
    killed before they could clean up are removed."""
    live = []
    for d in glob.glob(os.path.join(shell_dirs(), "*")):
        try:
            with open(os.path.join(d, "pid")) as f:
                os.kill(int(f.read()), 0)
            live.append(d)
        except (OSError, ValueError):
            shutil.rmtree(d, ignore_errors=True)
    return live


PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_.,:+-]*$")


def module_params(text):
    """make shell PARAMS="ndevs=4 fifo_size=64": insmod's arguments, checked."""
    words = text.split()
    bad = [w for w in words if not PARAM.match(w)]
    if bad:
        raise labmod.LabError(f"PARAMS: '{bad[0]}' is not name=value (letters, digits, _ in the "
                              f"name; no spaces or quotes in the value), e.g. PARAMS=\"ndevs=4\"")
    return "".join(f" {w}" for w in words)


def run_shell(args):
    kdir, built, origin, _secs = prepare(args, with_tests=False)
    board = labmod.board(args.lab)
    os.makedirs(shell_dirs(), exist_ok=True)
    workdir = tempfile.mkdtemp(prefix=f"{args.lab}-", dir=shell_dirs())
    with open(os.path.join(workdir, "pid"), "w") as f:
        f.write(str(os.getpid()))
    payload = os.path.join(workdir, "payload.img")
    params = module_params(args.params)
    plan = "".join(f"load {os.path.basename(m)}{params if m == built.module else ''}\n"
                   for m in (built.board, built.module) if m)
    vm.payload_disk(kdir, payload, plan + "shell\n", built.files(), built.tools)
    tools = f"; try {', '.join(os.path.basename(t) for t in built.tools)}" if built.tools else ""
    hello = (f"kdkit: booting a shell with {os.path.basename(built.module)} loaded{tools}; "
             "leave with 'reboot -f' or Ctrl-a x")
    cmd = vm.command(kdir, snapshot.initramfs(kdir), payload, None,
                     os.path.join(workdir, "results.log"), board, workdir,
                     runner.accel_order()[0], interactive=True)
    if args.action == "debug":
        port = free_port()
        cmd += ["-gdb", f"tcp:127.0.0.1:{port}"]
        threading.Thread(target=write_gdbinit, daemon=True,
                         args=(workdir, kdir, built, srcdir_of(args), port)).start()
        hello += f"; then, in a second terminal: make gdb LAB={args.lab}"
    modules = ({os.path.basename(built.module)[:-3]: built.module}, origin)
    try:
        if "gpio" in board.devices and sys.stdout.isatty():
            # The panel keeps the top line, live; 'make panel' is the other way.
            with ledpanel.Pinned(vm.gpio_file(workdir)):
                print(hello, flush=True)
                return console(cmd, modules)
        print(hello, flush=True)
        if sys.stdin.isatty():
            return console(cmd, modules)
        return shell_from_pipe(cmd, os.path.join(workdir, "results.log"), modules)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


SHELL_WAIT = 120
LINE_WAIT = 0.05   # seconds an unfinished console line waits for its end
# The module's code and data, where gdb is to find its symbols.
GDB_SECTIONS = (".text", ".data", ".rodata", ".bss", ".init.", ".exit.")
# What /init says of a loaded module (format() with the module's name).
SECTIONS = r"kdkit: \S+ sections {}((?: \S+=0x[0-9a-f]+)*)\s*$"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def srcdir_of(args):
    return labmod.resolve_src(args.lab, args.src)


def channel_line(results, match, alive):
    """Wait for a line of the results channel that match() accepts, while
    alive() and for at most SHELL_WAIT; what match() gave, or None."""
    deadline = time.monotonic() + SHELL_WAIT
    while alive() and time.monotonic() < deadline:
        with contextlib.suppress(OSError), open(results, errors="replace") as f:
            found = next((m for m in map(match, f) if m), None)
            if found:
                return found
        time.sleep(0.05)
    return None


def write_gdbinit(workdir, kdir, built, srcdir, port):
    """Once the guest says where the student's module landed, write the gdb
    script that attaches to QEMU's gdb stub with the kernel's symbols and
    the module's, at those addresses (make gdb runs it)."""
    ko = built.module
    said = re.compile(SECTIONS.format(re.escape(os.path.basename(ko)[:-3])))
    m = channel_line(os.path.join(workdir, "results.log"), lambda line: said.match(line.strip()),
                     lambda: os.path.isdir(workdir))
    if not m:
        return
    secs = dict(kv.split("=") for kv in m[1].split())
    extra = " ".join(f"-s {s} {a}" for s, a in sorted(secs.items())
                     if s != ".text" and s.startswith(GDB_SECTIONS))
    bdir = os.path.dirname(ko)
    script = "\n".join([
        "set pagination off",
        "set confirm off",
        f"file {os.path.join(kdir, 'vmlinux')}",
        f"target remote 127.0.0.1:{port}",
        f"add-symbol-file {ko} {secs['.text']} {extra}",
        # The build compiles a copy of the student's files.
        f"set substitute-path {bdir} {srcdir}",
        f"directory {srcdir}", ""])
    with open(os.path.join(workdir, "gdbinit.tmp"), "w") as g:
        g.write(script)
    os.replace(os.path.join(workdir, "gdbinit.tmp"), os.path.join(workdir, "gdbinit"))


def run_gdb(args):
    """gdb on the newest make debug of this lab, from its script."""
    scripts = sorted((os.path.join(d, "gdbinit") for d in running_shells()
                      if os.path.basename(d).startswith(f"{args.lab}-")
                      and os.path.exists(os.path.join(d, "gdbinit"))), key=os.path.getmtime)
    if not scripts:
        raise labmod.LabError(f"no make debug LAB={args.lab} is running: start one first, "
                              "and run make gdb once its shell is up")
    return subprocess.run(["gdb", "-q", "-x", scripts[-1]], preexec_fn=lifetime.bound()).returncode


def console(cmd, modules, stdin=None, started=None):
    """Run QEMU with its console passed through, each line that holds a
    frame of the student's module decoded to their file:line (modules: the
    module paths by name, and the build's origin of each file); return its
    exit status. A line goes out when it ends; an unfinished one (the
    prompt, an echo) after LINE_WAIT with nothing more to read."""
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, preexec_fn=lifetime.bound())
    if started:
        started(proc)
    out, pending, fd = sys.stdout.buffer, b"", proc.stdout.fileno()
    while True:
        if pending and not select.select([fd], [], [], LINE_WAIT)[0]:
            out.write(pending)
            out.flush()
            pending = b""
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            text = line.decode(errors="replace")
            if "+0x" in text:
                line = kbuild.point_home(decode.annotate([text], modules[0])[0],
                                         modules[1]).encode()
            out.write(line + b"\n")
        out.flush()
    out.write(pending)
    out.flush()
    return proc.wait()


def shell_from_pipe(cmd, results, modules):
    """Piped input (make shell < commands): give it to the guest once its
    shell holds the serial line. Sent at once, the first characters would
    wait in the UART's FIFO, which the tty's first open empties."""
    typed = sys.stdin.buffer.read()

    def feed(proc):
        channel_line(results, lambda line: line.rstrip().endswith(" shell"),
                     lambda: proc.poll() is None)
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(typed)
            proc.stdin.close()

    return console(cmd, modules, subprocess.PIPE,
                   lambda proc: threading.Thread(target=feed, args=(proc,), daemon=True).start())


def run_panel(args):
    """Follow the LEDs of the newest running shell, from another terminal."""
    if "gpio" not in labmod.board(args.lab).devices:
        raise labmod.LabError(f"lab {args.lab} has no LED panel; the panel is for LAB=fsled")
    files = [os.path.join(d, "gpio.mem") for d in running_shells()]
    files = [f for f in files if os.path.exists(f)]
    if not files:
        raise labmod.LabError(f"no {args.lab} shell is running; start one with "
                              f"'make shell LAB={args.lab}', then run this again")
    newest = max(files, key=os.path.getmtime)
    print(f"kdkit: LEDs of {os.path.dirname(newest)} (Ctrl-C to stop)")
    ledpanel.follow(newest)
    return 0


def run_bench(args):
    """Edit-to-result for one lab: edit the student's file, rebuild, test."""
    srcdir = labmod.resolve_src(args.lab, args.src)
    first = [f for f in labmod.student_files(args.lab) if f.endswith(".c")][0]
    flavour = kernel_source.flavour(args.strict)
    with tempfile.TemporaryDirectory() as tmp:
        # Edit a copy, never the student's own file.
        shutil.copytree(srcdir, os.path.join(tmp, args.lab))
        args.src = tmp
        with contextlib.redirect_stdout(io.StringIO()):
            _rc, warm = run_tests(args)   # warm the build directory for this copy
        with open(os.path.join(tmp, args.lab, first), "a") as f:
            f.write("/* an edit, as a student would make */\n")
        t0 = time.monotonic()
        _rc, run = run_tests(args)
        total = time.monotonic() - t0
        shutil.rmtree(kbuild.build_dir(args.lab, os.path.join(tmp, args.lab), flavour, "test"),
                      ignore_errors=True)
    how = (f"restore {run.start_secs:.2f} s" if run.restores == run.boots else
           f"boot {run.start_secs:.2f} s" if not run.restores else
           f"boot or restore {run.start_secs:.2f} s")
    runs = f"{run.boots} run{'s' if run.boots > 1 else ''} of the VM"
    print(f"bench {args.lab} ({flavour}): edit-to-result {total:.2f} s = build {run.build_secs:.2f} s"
          f" + {how} + tests {run.tests_secs:.2f} s ({runs})"
          f" + harness {total - run.build_secs - run.start_secs - run.tests_secs:.2f} s")
    # An edit to a comment changes no result: a time for another one (a
    # crash, a run cut short) measures nothing.
    if run.outcome.counts() != warm.outcome.counts():
        print(f"bench {args.lab}: WRONG: the timed run gave {_said(run.outcome.counts())}, "
              f"the same files before it {_said(warm.outcome.counts())}")
        return 1
    return 0


def _said(counts):
    return f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[SKIPPED]} skipped"


def run_save(args):
    """Boot and save the VM of each lab's machine now (harness/snapshot.py), so
    that no later run pays for it: for an image that grades many."""
    kdir = kernel_source.kernel_dir(kernel_source.flavour(args.strict))
    wanted = labmod.labs() if args.lab == "all" else [l for l in args.lab.split(",") if l]
    for lab in wanted:
        labmod.check_lab(lab)
    done = {}
    for lab in wanted:
        board = labmod.board(lab)
        if board not in done:
            done[board] = snapshot.saved(kdir, board, "tcg")
        print(f"kdkit: {lab}: " + (f"saved VM {done[board]}" if done[board] else "no saved VM; runs boot cold"))
    return 0 if all(done.values()) else 1


ACTIONS = {"test": lambda args: run_tests(args)[0], "watch": run_watch, "shell": run_shell,
           "debug": run_shell, "gdb": run_gdb, "panel": run_panel, "bench": run_bench,
           "save": run_save}


def main(argv):
    p = argparse.ArgumentParser(prog="kdkit", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=list(ACTIONS))
    p.add_argument("lab")
    p.add_argument("--src", default="labs")
    p.add_argument("--strict", action="store_true")
    p.add_argument("--case", default="", help="only these cases: suite, case or suite.case globs")
    p.add_argument("--params", default="", help="make shell: the module's parameters")
    p.add_argument("--rounds", type=int, default=0, help="make watch: stop after this many runs")
    args = p.parse_args(argv)
    try:
        if args.action in ("gdb", "panel"):
            labmod.check_lab(args.lab)
        return ACTIONS[args.action](args)
    except (labmod.LabError, kernel_source.SourceError, vm.VmError) as e:
        print(f"kdkit: {e}" if "\n" not in str(e) else str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:   # e.g. piped into head
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
