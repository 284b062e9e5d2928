"""Running a lab: build it, boot its VMs (restored where a saved one
exists), until every case has a result within the lab's budget of boots.
Both front ends, the student's (kdkit.py) and the grader's, run labs here.

Settings from the environment: KDKIT_TIMEOUT (seconds a boot may take
on one CPU, default 60), KDKIT_LAB_BUDGET (seconds of boots a lab may
take on one CPU, default 120), KDKIT_ACCEL (tcg, or kvm to try KVM with
a fallback to TCG), KDKIT_VMS (VMs a lab may run at once, default one a
core, up to 4). Both limits scale by machine.slowness(): half a CPU
gets twice as long, so that a slow host costs a correct driver nothing.
"""
import concurrent.futures
import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
import time
from typing import NamedTuple

from harness import decode, kbuild, machine, results, snapshot, vm
from harness import lab as labmod
from kernel import source as kernel_source

TIMEOUT = float(os.environ.get("KDKIT_TIMEOUT", "60"))
# Seconds of boots one lab may take, crashes and reruns included: a hostile
# driver costs its grader a bounded time (four labs fit Gradescope's 10 min).
LAB_BUDGET = float(os.environ.get("KDKIT_LAB_BUDGET", "120"))
KVM_START = 10.0   # seconds KVM gets to print anything before we give up on it


def boot_limit():
    """Seconds one boot may take on this machine (TIMEOUT is one CPU's)."""
    return TIMEOUT * machine.slowness()


def lab_budget():
    """Seconds of boots one lab may take on this machine."""
    return LAB_BUDGET * machine.slowness()


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
    tokens: list        # the one-time tokens of /init's lines
    limit: float        # the wall-clock limit it ran under


def boot_once(kdir, payload_of, board, workdir, n, accel, limit=None):
    """One run of the VM: restored from the saved state of its machine
    (snapshot.py) where there is one, booted cold otherwise. The
    machine starts at once; payload_of() gives its (plan, files), and may
    wait for the build (run_lab)."""
    payload = os.path.join(workdir, f"payload-{n}.img")
    console = os.path.join(workdir, f"console-{n}.log")
    channel = os.path.join(workdir, f"results-{n}.log")
    # The results channel's markers carry one-time tokens each run makes
    # anew: lines the student's module could print lack them (results.py).
    tokens = results.new_tokens()
    limit = KVM_START if accel == "kvm" else (limit or boot_limit())
    state = snapshot.saved(kdir, board, accel)
    cold_retries = 1
    while True:
        vm.empty_disk(payload)
        for old in (console, channel):
            with contextlib.suppress(OSError):
                os.unlink(old)
        cmd = vm.command(kdir, snapshot.initramfs(kdir), payload, console, channel, board,
                         workdir, accel, **(snapshot.restore_args(state) if state else {}))
        start = time.monotonic()
        try:
            secs, timed_out, started = vm.boot(
                cmd, limit, channel, vm.qmp_restore(state) if state else (),
                lambda: vm.payload_disk(kdir, payload, *payload_of(), tokens=tokens))
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
        if not state and started is None and cold_retries:
            # A cold boot that stopped before /init took its payload (the
            # kernel's own boot tripping the soft-lockup panic on a loaded
            # machine) ran nothing of the driver's: boot again, once.
            cold_retries -= 1
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
                secs if started is None else started, bool(state), tokens, limit)


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
    """How many VMs a lab's run may use at once: KDKIT_VMS, else one a CPU
    it may use (machine.py; a restored VM costs a fraction of a second)."""
    want = os.environ.get("KDKIT_VMS") or str(min(machine.jobs(), 4))
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
    flavour = kernel_source.flavour(strict)
    kdir = kernel_source.kernel_dir(flavour)
    whole_lab = plan is None
    outcome = results.Outcome(plan or labmod.expected_cases(lab), labmod.expected_cases(lab))
    sizes = {suite: len(cases) for suite, cases in outcome.plan}
    runs = runs or os.path.join(kernel_source.CACHE, "runs")
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
                                  labmod.board(lab), workdir, n, accels[0],
                                  min(boot_limit(), left)) for n, _sel, only in todo]

    def payload_of(only):
        built = building.result()[0]
        return plan_text(only, built), built.files()

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=vms)
    budget = lab_budget()
    todo, running = launch(pool, budget)
    t0 = time.monotonic()
    build = kbuild.build_sandboxed if sandboxed else kbuild.build
    try:
        built, warnings, origin = build(lab, srcdir, kdir,
                                        bdir or kbuild.build_dir(lab, srcdir, flavour, "test"))
    except BaseException as e:
        building.set_exception(e)
        pool.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    building.set_result((built, warnings, origin))
    outcome.notes += [f"{lab}: calls {sym}, which the reference solutions do not (shown for "
                      "the instructor; the tests grade it like any other code)"
                      for sym in built.unusual]
    build_secs = time.monotonic() - t0
    deadline = time.monotonic() + budget
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
            fold(outcome, todo, done, stops)
            restores += sum(run.restored for run in done)
            if moot:
                outcome.settle(moot(outcome), "an item it counts for has already failed, "
                               "so it could not change the grade")
        if not outcome.pending():
            break
        if left < 1:
            outcome.give_up(f"the lab's {budget:.0f} s of boots ran out")
            break
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=vms)
        todo, running = launch(pool, left)
    decode.annotate_outcome(outcome, {os.path.basename(m)[:-3]: m for m in built.files()
                                      if m.endswith(".ko")})
    return Run(outcome, origin, warnings, build_secs, start_secs, tests_secs, boots, restores,
               workdir)


def fold(outcome, todo, done, stops):
    """Add a round's runs to outcome; give up on what cannot finish. stops
    counts each suite's hangs and floods."""
    progress = False
    for (_n, sel, _only), run in zip(todo, done):
        crashed = outcome.crashed_suites()
        progress |= outcome.add_boot(run.channel, run.console, run.timed_out, run.limit,
                                     run.tokens, sel)
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


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def plan_text(only, built):
    """The guest's plan: the board, the KUnit module, then the userspace
    suites run with the student's module alone. See init."""
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
