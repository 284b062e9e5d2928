"""How much of the machine the kit may use. A container given half a CPU
(Gradescope's default, Docker's --cpus 0.5) still sees every core of its
host in os.cpu_count(): the CPU time it may use is the cgroup's quota,
and the cores it may run on are its affinity mask.

  python3 -m harness.machine    print what this process may use
"""
import functools
import math
import os

CGROUP = "/sys/fs/cgroup"


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _own_cgroups(text):
    """{controller: path} from /proc/self/cgroup's text ('' for v2)."""
    found = {}
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                found[controller] = parts[2]
    return found


def _ancestors(root, path):
    """root/path and each folder above it up to root, deepest first."""
    parts = [p for p in path.split("/") if p]
    return [os.path.join(root, *parts[:n]) for n in range(len(parts), -1, -1)]


def _quota_v2(folder):
    text = _read(os.path.join(folder, "cpu.max"))
    if not text:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max" or not period:
        return None
    return int(quota) / int(period)


def _quota_v1(folder):
    quota, period = (_read(os.path.join(folder, f)) for f in ("cpu.cfs_quota_us", "cpu.cfs_period_us"))
    if not quota or not period or int(quota) <= 0:
        return None
    return int(quota) / int(period)


def cpu_quota(root=CGROUP, self_cgroup="/proc/self/cgroup"):
    """CPUs' worth of time the cgroups allow this process (0.5 for half a
    CPU), the tightest of its cgroup and those above it; None if unlimited.
    In a container the cgroup's path may name a folder the container does
    not have (its own cgroup is mounted at the root): the root is tried too."""
    own = _own_cgroups(_read(self_cgroup))
    quotas = []
    for controller, reader in (("", _quota_v2), ("cpu", _quota_v1)):
        if controller not in own:
            continue
        base = root if controller == "" else next(
            (d for d in (os.path.join(root, "cpu"), os.path.join(root, "cpu,cpuacct"))
             if os.path.isdir(d)), None)
        if base is None:
            continue
        for folder in _ancestors(base, own[controller]) + [base]:
            q = reader(folder)
            if q:
                quotas.append(q)
    return min(quotas) if quotas else None


@functools.lru_cache(maxsize=None)
def cpus():
    """CPUs this process may use: its affinity, less the cgroup quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cpu_quota()
    return min(float(cores), quota) if quota else float(cores)


def jobs():
    """Processes worth running at once: whole CPUs, at least one."""
    return max(1, math.floor(cpus()))


def slowness():
    """How much longer work takes here than on one whole CPU: 2 at half a
    CPU, 1 with a CPU or more. Time limits meant for one CPU scale by it."""
    return max(1.0, 1.0 / cpus())


if __name__ == "__main__":
    print(f"cpus {cpus():g}, jobs {jobs()}, slowness {slowness():g}")
