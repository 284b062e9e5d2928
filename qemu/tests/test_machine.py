"""harness/machine.py: the CPUs a process may use, from its cgroup's quota
(a container given half a CPU sees every core of its host)."""
from harness import machine, runner


def tree(tmp_path, files, cgroup_text):
    for rel, text in files.items():
        path = tmp_path / "fs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    (tmp_path / "self").write_text(cgroup_text)
    return str(tmp_path / "fs"), str(tmp_path / "self")


def test_docker_on_cgroup_v1_gives_half_a_cpu(tmp_path):
    # As Docker's --cpus 0.5 shows it inside: the path names the host's
    # folder, and the container's own cgroup is mounted at the root.
    root, me = tree(tmp_path, {"cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000"},
                    "4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n")
    assert machine.cpu_quota(root, me) == 0.5


def test_cgroup_v2_takes_the_tightest_quota_above_the_process(tmp_path):
    root, me = tree(tmp_path, {"cpu.max": "max 100000", "ci/cpu.max": "150000 100000",
                               "ci/job/cpu.max": "max 100000"}, "0::/ci/job\n")
    assert machine.cpu_quota(root, me) == 1.5


def test_no_quota_is_no_limit(tmp_path):
    root, me = tree(tmp_path, {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"},
                    "1:cpu,cpuacct:/\n")
    assert machine.cpu_quota(root, me) is None
    assert machine.cpu_quota(str(tmp_path / "none"), str(tmp_path / "none")) is None


def test_jobs_and_slowness_follow_the_cpus(monkeypatch):
    monkeypatch.setattr(machine, "cpus", lambda: 0.5)
    assert machine.jobs() == 1 and machine.slowness() == 2.0
    monkeypatch.setattr(machine, "cpus", lambda: 2.0)
    assert machine.jobs() == 2 and machine.slowness() == 1.0


def test_boot_limits_scale_with_the_cpus(monkeypatch):
    # A correct driver on half a CPU gets the time it has on one.
    monkeypatch.setattr(machine, "cpus", lambda: 0.5)
    assert runner.boot_limit() == 2 * runner.TIMEOUT
    assert runner.lab_budget() == 2 * runner.LAB_BUDGET
    monkeypatch.setattr(machine, "cpus", lambda: 4.0)
    assert runner.boot_limit() == runner.TIMEOUT
