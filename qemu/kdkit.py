#!/usr/bin/env python3
"""kdkit's front end: build a lab, boot it, report. Called by the Makefile.

  kdkit.py test  LAB [--src DIR] [--strict]   run the lab's KUnit suites
  kdkit.py shell LAB [--src DIR] [--strict]   a VM with the lab's module
  kdkit.py bench LAB [--src DIR]              edit-to-result, split up
  kdkit.py panel fsled                        the LEDs of a running shell
  kdkit.py save  all|LAB,.. [--strict]        boot and save the labs' VMs now

Settings from the environment: KDKIT_CACHE (where kernels and builds live),
KDKIT_TIMEOUT (seconds a boot may take, default 60), KDKIT_LAB_BUDGET
(seconds of boots a lab may take, default 120), KDKIT_ACCEL (tcg, or
kvm to try KVM with a fallback to TCG), KDKIT_KEEP_LOGS (keep the console
logs of a run that passed too), KDKIT_VMS (VMs a lab may run at once,
default one a core, up to 4), KDKIT_COLD=1 (boot every run instead of
restoring the saved VM, qemu/snapshot.py).
"""
import argparse
import concurrent.futures
import contextlib
import fnmatch
import functools
import glob
import hashlib
import io
import os
import re
import secrets
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import NamedTuple

import decode
import kernel_source
import lab as labmod
import ledpanel
import results
import snapshot
import vm
from ktap import CRASHED, FAILED, PASSED, SKIPPED

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = kernel_source.CACHE
TIMEOUT = float(os.environ.get("KDKIT_TIMEOUT", "60"))
# Seconds of boots one lab may take, crashes and reruns included: a hostile
# driver costs its grader a bounded time (four labs fit Gradescope's 10 min).
LAB_BUDGET = float(os.environ.get("KDKIT_LAB_BUDGET", "120"))
KVM_START = 10.0   # seconds KVM gets to print anything before we give up on it


def kernel_dir(flavour):
    try:
        path = kernel_source.paths(flavour)[1]
    except kernel_source.SourceError as e:
        raise labmod.LabError(str(e))
    if not os.path.isfile(os.path.join(path, ".kdkit-built")):
        raise labmod.LabError(f"the {flavour} kit kernel is not built; run 'make setup'")
    return path


def build_dir(lab, srcdir, flavour, kind):
    key = hashlib.sha256(f"{srcdir}\0{flavour}\0{kind}".encode()).hexdigest()[:12]
    return os.path.join(CACHE, "build", f"{lab}-{kind}-{key}")


def prepare(args, with_tests=True):
    labmod.check_lab(args.lab)
    srcdir = labmod.resolve_src(args.lab, args.src)
    flavour = "strict" if args.strict else "fast"
    kdir = kernel_dir(flavour)
    t0 = time.monotonic()
    bdir = build_dir(args.lab, srcdir, flavour, "test" if with_tests else "shell")
    built, warnings, origin = labmod.build(args.lab, srcdir, kdir, bdir, with_tests)
    if warnings.strip():
        print(warnings.rstrip())
    return kdir, built, origin, time.monotonic() - t0


def accel_order():
    want = os.environ.get("KDKIT_ACCEL", "tcg")
    if want not in ("tcg", "kvm"):
        raise labmod.LabError(f"KDKIT_ACCEL={want} is not tcg or kvm")
    return ["kvm", "tcg"] if want == "kvm" else ["tcg"]


class Boot(NamedTuple):
    """One run of the VM and what it left: the two channels, and how it
    went."""
    channel: str        # the results channel (ttyS1)
    console: str        # the kernel log (ttyS0)
    timed_out: bool
    flooded: bool       # the kernel log passed vm.OUTPUT_LIMIT
    secs: float         # QEMU's whole run
    start_secs: float   # until the guest had the payload: boot or restore
    restored: bool      # started from a saved VM, not booted
    secret: str


def boot_once(kdir, payload_of, board, strict, workdir, n, accel, limit=None):
    """One run of the VM: restored from the saved state of its machine
    (qemu/snapshot.py) where there is one, booted cold otherwise. The
    machine starts at once; payload_of() gives its (plan, files), and may
    wait for the build (run_lab)."""
    payload = os.path.join(workdir, f"payload-{n}.img")
    console = os.path.join(workdir, f"console-{n}.log")
    channel = os.path.join(workdir, f"results-{n}.log")
    # The results channel's markers carry a secret each run makes anew:
    # lines the student's module could print lack it (results.py).
    secret = secrets.token_hex(16)
    limit = KVM_START if accel == "kvm" else (limit or TIMEOUT)
    state = snapshot.saved(kdir, board, strict, accel)
    while True:
        vm.empty_disk(payload)
        for old in (console, channel):
            with contextlib.suppress(OSError):
                os.unlink(old)
        cmd = vm.command(kdir, snapshot.initramfs(kdir), payload, console, channel, board,
                         workdir, strict, accel, **(snapshot.restore_args(state) if state else {}))
        start = time.monotonic()
        try:
            secs, timed_out, started = vm.boot(
                cmd, limit, channel, vm.qmp_restore(state) if state else (),
                lambda: vm.payload_disk(kdir, payload, *payload_of(), secret=secret))
        except vm.HardwareError as e:
            # Like a panic: the console ends here, with QEMU's reason.
            with open(console, "a") as f:
                f.write(f"\n{e}\n")
            secs, timed_out, started = time.monotonic() - start, False, 0.0
        except vm.VmError as e:
            if not state:
                raise
            snapshot.forget(state, str(e))
            state = None
            continue
        if state and started is None:
            # The restored guest never took its payload: the state is bad,
            # not the driver, which never ran.
            snapshot.forget(state, "the guest did not take its payload")
            state = None
            continue
        break
    os.unlink(payload)
    flooded = os.path.exists(console) and os.path.getsize(console) >= vm.OUTPUT_LIMIT
    if flooded:
        with open(console, "a") as f:   # past the limit for QEMU, not for us
            f.write(f"\nkdkit: the kernel log passed {vm.OUTPUT_LIMIT >> 20} MB, "
                    "so the run was stopped\n")
    read = lambda p: open(p, errors="replace").read() if os.path.exists(p) else ""
    return Boot(read(channel), read(console), timed_out, flooded, secs,
                secs if started is None else started, bool(state), secret)


class Run(NamedTuple):
    """One lab tested: its outcome, and where and how long."""
    outcome: results.Outcome
    origin: dict        # build paths -> the user's files, for messages
    warnings: str       # the compiler's, if any
    build_secs: float
    start_secs: float   # booting or restoring the VMs, as waited for
    tests_secs: float   # from the payloads to the runs' ends, as waited for
    boots: int          # runs of the VM
    restores: int       # of which restored from a saved VM
    workdir: str        # the runs' consoles and channels


def batches(selection, vms, sizes=None):
    """Split a run's selectors into the VMs that run them at once: one
    suite a VM (each suite gets a clean kernel) when there are vms to
    spare, else one VM for all."""
    groups = {}
    for sel in selection:
        groups.setdefault(sel.split(".")[0], []).append(sel)
    if vms <= 1 or len(groups) <= 1:
        return [selection]
    # The most cases first (sizes: a suite's number of cases): when there
    # are more suites than VMs, the ones that wait for a free VM are short.
    sizes = sizes or {}

    def cases(sels):
        return sum(sizes.get(sel, 1) if "." not in sel else 1 for sel in sels)
    return sorted(groups.values(), key=cases, reverse=True)


def parallel_vms():
    """How many VMs a lab's run may use at once: KDKIT_VMS, else one a core
    (a restored VM costs a fraction of a second)."""
    want = os.environ.get("KDKIT_VMS") or str(min(os.cpu_count() or 1, 4))
    if not want.isdigit() or int(want) < 1:
        raise labmod.LabError(f"KDKIT_VMS={want} is not a number of VMs (1 or more)")
    return int(want)


def run_lab(lab, srcdir, strict=False, bdir=None, runs=None, sandboxed=False, vms=None,
            moot=None, plan=None):
    """Build lab from srcdir (in the sandbox, for grading) and run its VMs
    until every case has a result, up to vms of them at once (default
    parallel_vms()). The first VMs start while the lab builds, and wait for
    it. moot(outcome), if given, names cases not worth another boot; plan,
    if given, is the part of the lab's [(suite, [case])] to run.
    Raises LabError if it does not build."""
    flavour = "strict" if strict else "fast"
    kdir = kernel_dir(flavour)
    whole_lab = plan is None
    outcome = results.Outcome(plan or labmod.expected_cases(lab), labmod.expected_cases(lab))
    sizes = {suite: len(cases) for suite, cases in outcome.plan}
    runs = runs or os.path.join(CACHE, "runs")
    os.makedirs(runs, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix=f"{lab}-", dir=runs)
    accels = accel_order()
    vms = 1 if accels[0] == "kvm" else (vms or parallel_vms())
    building = concurrent.futures.Future()
    boots, restores, start_secs, tests_secs, stops = 0, 0, 0.0, 0.0, {}

    def launch(pool, left):
        """Start a round: the pending suites, in as many VMs as allowed."""
        groups = batches(outcome.pending(), vms, sizes)
        # A first run in one VM selects nothing: every suite, as a student's would.
        whole = whole_lab and boots == 0 and len(groups) == 1
        todo = [(boots + i + 1, sel, "" if whole else " ".join(sel))
                for i, sel in enumerate(groups)]
        return todo, [pool.submit(boot_once, kdir, functools.partial(payload_of, only),
                                  labmod.board(lab), strict, workdir, n, accels[0],
                                  min(TIMEOUT, left)) for n, _sel, only in todo]

    def payload_of(only):
        built = building.result()[0]
        return plan_text(only, built), built.files()

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=vms)
    todo, running = launch(pool, LAB_BUDGET)
    t0 = time.monotonic()
    build = labmod.build_sandboxed if sandboxed else labmod.build
    try:
        built, warnings, origin = build(lab, srcdir, kdir,
                                        bdir or build_dir(lab, srcdir, flavour, "test"))
    except BaseException as e:
        building.set_exception(e)
        pool.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    building.set_result((built, warnings, origin))
    build_secs = time.monotonic() - t0
    deadline = time.monotonic() + LAB_BUDGET
    while True:
        round_start = time.monotonic()
        boots += len(todo)
        with pool:
            done = [f.result() for f in running]
        left = deadline - time.monotonic()
        if accels[0] == "kvm" and done[0].timed_out and not done[0].console:
            print(f"kdkit: KVM did not start the guest within {KVM_START:.0f} s; "
                  "falling back to TCG (unset KDKIT_ACCEL to skip this wait)")
            accels.pop(0)
            boots -= len(todo)
        else:
            # Timed as the user waits: the VMs of a round run at once.
            wall = time.monotonic() - round_start
            slowest_start = max(run.start_secs for run in done)
            start_secs += slowest_start
            tests_secs += wall - slowest_start
            fold(outcome, todo, done, stops, left)
            restores += sum(run.restored for run in done)
            if moot:
                outcome.settle(moot(outcome), "an item it counts for has already failed, "
                               "so it could not change the grade")
        if not outcome.pending():
            break
        if left < 1:
            outcome.give_up(f"the lab's {LAB_BUDGET:.0f} s of boots ran out")
            break
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=vms)
        todo, running = launch(pool, left)
    decode.annotate_outcome(outcome, {os.path.basename(m)[:-3]: m for m in built.files()
                                      if m.endswith(".ko")})
    return Run(outcome, origin, warnings, build_secs, start_secs, tests_secs, boots, restores,
               workdir)


def fold(outcome, todo, done, stops, left):
    """Add a round's runs to outcome; give up on what cannot finish. stops
    counts each suite's hangs and floods."""
    progress = False
    for (_n, sel, _only), run in zip(todo, done):
        crashed = outcome.crashed_suites()
        progress |= outcome.add_boot(run.channel, run.console, run.timed_out,
                                     min(TIMEOUT, left), run.secret, sel)
        # A hang or a flood costs a whole run. The second in one suite
        # ends that suite: a driver that does it in every case costs two
        # runs a suite, not one a case, and the other suites still run.
        if run.timed_out or run.flooded:
            for suite, n in outcome.crashed_suites().items():
                stops[suite] = stops.get(suite, 0) + n - crashed[suite]
    if not progress and outcome.pending():
        outcome.give_up("a boot made no progress, so the harness gave up")
    worn = {s for s, n in stops.items() if n >= 2}
    if worn and any(s.split(".")[0] in worn for s in outcome.pending()):
        outcome.give_up(f"two of its cases hung or flooded the kernel log, so the rest of "
                        f"{', '.join(sorted(worn))} did not run", worn)


def selected_cases(lab, pattern):
    """The part of lab's plan that CASE=pattern names: suites, cases or
    suite.case, each a shell glob; several separated by commas or spaces."""
    globs = pattern.replace(",", " ").split()
    plan = []
    for suite, cases in labmod.expected_cases(lab):
        chosen = [c for c in cases if any(fnmatch.fnmatchcase(name, g) for g in globs
                                          for name in (suite, c, f"{suite}.{c}"))]
        if chosen:
            plan.append((suite, chosen))
    if not plan:
        example = "{}.{}".format(*next((s, cs[0]) for s, cs in labmod.expected_cases(lab)))
        raise labmod.LabError(f"CASE={pattern} names no case of {lab}: give a suite, a case or "
                              f"suite.case, globs allowed (e.g. CASE={example}); "
                              f"make test LAB={lab} lists them all")
    return plan


def run_tests(args):
    labmod.check_lab(args.lab)
    srcdir = labmod.resolve_src(args.lab, args.src)
    plan = selected_cases(args.lab, args.case) if args.case else None
    run = run_lab(args.lab, srcdir, args.strict, plan=plan)
    if run.warnings.strip():
        print(run.warnings.rstrip())
    counts = report(run.outcome, run.origin)
    failed = counts[FAILED] > 0
    if failed or os.environ.get("KDKIT_KEEP_LOGS"):
        print(f"console logs kept in {run.workdir}")
    else:
        shutil.rmtree(run.workdir, ignore_errors=True)
    left_out = (sum(len(c) for _s, c in labmod.expected_cases(args.lab))
                - sum(len(c) for _s, c in plan)) if plan else 0
    print(f"{counts[PASSED]} passed, {counts[FAILED]} failed"
          + (f", {counts[SKIPPED]} skipped" if counts[SKIPPED] else "")
          + (f"; {left_out} left out by CASE={args.case} (make test without CASE= runs them all)"
             if left_out else ""))
    return (1 if failed else 0), run


def wait_for_save(files):
    """Block until one of files is written (inotifywait, from inotify-tools)."""
    cmd = ["inotifywait", "-qq", "-e", "close_write", "-e", "moved_to", "-e", "create",
           *sorted({os.path.dirname(f) for f in files})]
    before = {f: os.path.getmtime(f) for f in files if os.path.exists(f)}
    while True:
        subprocess.run(cmd)
        if any(os.path.exists(f) and os.path.getmtime(f) != before.get(f) for f in files):
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
    failing, rounds = failed_of([]), 0
    while not args.rounds or rounds + 1 < args.rounds:
        print(f"kdkit: watching {', '.join(os.path.relpath(f) for f in files)}: "
              "save to test again, Ctrl-C to stop", flush=True)
        wait_for_save(files)
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


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def plan_text(only, built):
    """The guest's plan: the board, the KUnit module, then the userspace
    suites run with the student's module alone. See qemu/init."""
    name = os.path.basename
    text = "".join(f"sha256 {_sha256(p)} {name(p)}\n" for p in built.progs)
    text += f"only {only}\n"
    if built.board:
        text += f"load {name(built.board)}\n"
    # A VM given some suites loads only what they need: on the strict
    # kernel every insmod and process costs tens of milliseconds.
    wanted = {sel.split(".")[0] for sel in only.split()}
    progs = [p for p in built.progs if not wanted or name(p) in wanted]
    if not wanted or wanted - {name(p) for p in built.progs}:
        text += f"group 1 {name(built.module)}\n"
    if built.plain and progs:
        text += f"user 2 {name(built.plain)} {' '.join(map(name, progs))}\n"
    return text


def report(outcome, origin):
    """Print the results the way kunit.py does, a line a case."""
    for suite, cases in outcome.plan:
        print(f"{'=' * 12} {suite} ({len(cases)} cases) {'=' * 12}")
        bad = False
        for c in cases:
            case = outcome.cases[suite].get(c)
            print(f"[{case.status}] {c}")
            if case.status in (FAILED, CRASHED):
                bad = True
                for line in case.log:
                    print(f"    {labmod.point_home(line, origin)}")
        if suite in outcome.health:
            bad = True
            print(f"[FAILED] kernel health: the kernel reported a problem while {suite} ran")
            for report_lines in outcome.health[suite]:
                for line in report_lines:
                    print(f"    {labmod.point_home(line, origin)}")
        print(f"{'=' * 12} [{'FAILED' if bad else 'PASSED'}] {suite} {'=' * 12}")
    for note in outcome.notes:
        print(f"kdkit: {note}")
    return outcome.counts()


def shell_dirs():
    return os.path.join(CACHE, "shell")


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
                     os.path.join(workdir, "results.log"), board, workdir, args.strict,
                     accel_order()[0], interactive=True)
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
    return subprocess.run(["gdb", "-q", "-x", scripts[-1]]).returncode


def console(cmd, modules, stdin=None, started=None):
    """Run QEMU with its console passed through, each line that holds a
    frame of the student's module decoded to their file:line (modules: the
    module paths by name, and the build's origin of each file); return its
    exit status. A line goes out when it ends; an unfinished one (the
    prompt, an echo) after LINE_WAIT with nothing more to read."""
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE)
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
                line = labmod.point_home(decode.annotate([text], modules[0])[0],
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
    flavour = "strict" if args.strict else "fast"
    with tempfile.TemporaryDirectory() as tmp:
        # Edit a copy, never the student's own file.
        shutil.copytree(srcdir, os.path.join(tmp, args.lab))
        args.src = tmp
        with contextlib.redirect_stdout(io.StringIO()):
            run_tests(args)   # warm the build directory for this copy
        with open(os.path.join(tmp, args.lab, first), "a") as f:
            f.write("/* an edit, as a student would make */\n")
        t0 = time.monotonic()
        _rc, run = run_tests(args)
        total = time.monotonic() - t0
        shutil.rmtree(build_dir(args.lab, os.path.join(tmp, args.lab), flavour, "test"),
                      ignore_errors=True)
    how = (f"restore {run.start_secs:.2f} s" if run.restores == run.boots else
           f"boot {run.start_secs:.2f} s" if not run.restores else
           f"boot or restore {run.start_secs:.2f} s")
    runs = f"{run.boots} run{'s' if run.boots > 1 else ''} of the VM"
    print(f"bench {args.lab} ({flavour}): edit-to-result {total:.2f} s = build {run.build_secs:.2f} s"
          f" + {how} + tests {run.tests_secs:.2f} s ({runs})"
          f" + harness {total - run.build_secs - run.start_secs - run.tests_secs:.2f} s")
    return 0


def run_save(args):
    """Boot and save the VM of each lab's machine now (qemu/snapshot.py), so
    that no later run pays for it: for an image that grades many."""
    kdir = kernel_dir("strict" if args.strict else "fast")
    wanted = labmod.labs() if args.lab == "all" else [l for l in args.lab.split(",") if l]
    for lab in wanted:
        labmod.check_lab(lab)
    done = {}
    for lab in wanted:
        board = labmod.board(lab)
        if board not in done:
            done[board] = snapshot.saved(kdir, board, args.strict, "tcg")
        print(f"kdkit: {lab}: " + (f"saved VM {done[board]}" if done[board] else "no saved VM; runs boot cold"))
    return 0 if all(done.values()) else 1


def main(argv):
    p = argparse.ArgumentParser(prog="kdkit", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["test", "watch", "shell", "debug", "gdb", "bench", "panel",
                                      "save"])
    p.add_argument("lab")
    p.add_argument("--src", default="labs")
    p.add_argument("--strict", action="store_true")
    p.add_argument("--case", default="", help="only these cases: suite, case or suite.case globs")
    p.add_argument("--params", default="", help="make shell: the module's parameters")
    p.add_argument("--rounds", type=int, default=0, help="make watch: stop after this many runs")
    args = p.parse_args(argv)
    try:
        if args.action == "test":
            return run_tests(args)[0]
        if args.action == "watch":
            return run_watch(args)
        if args.action in ("shell", "debug"):
            return run_shell(args)
        if args.action == "gdb":
            labmod.check_lab(args.lab)
            return run_gdb(args)
        if args.action == "save":
            return run_save(args)
        if args.action == "panel":
            labmod.check_lab(args.lab)
            return run_panel(args)
        return run_bench(args)
    except (labmod.LabError, vm.VmError) as e:
        print(f"kdkit: {e}" if "\n" not in str(e) else str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:   # e.g. piped into head
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
