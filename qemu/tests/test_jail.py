"""The jail, the sandbox's tier for containers (harness/jail.py): what a
build inside it can and cannot do, tried from inside."""
import os
import re

import pytest

from harness import jail, sandbox

HEADER = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
# Each line tries one thing and prints what happened.
PROBE = r'''
import ctypes, errno, os, socket
def tried(what, fn):
    try:
        fn()
        print(what, "ok")
    except OSError as e:
        print(what, errno.errorcode.get(e.errno, e.errno))
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    if libc.syscall(nr, *args) == -1:
        raise OSError(ctypes.get_errno(), "")
print("uid", os.getuid(), os.getgid(), os.getgroups())
tried("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
tried("unshare", lambda: os.unshare(0x10000000) if hasattr(os, "unshare") else call(272, 0x10000000))
tried("ptrace", lambda: call(101, 16, os.getppid(), 0, 0))
tried("clone-newuser", lambda: call(56, 0x10000000 | 17, 0, 0, 0, 0))
tried("proc", lambda: os.listdir("/proc"))
tried("secret", lambda: open("SECRET").read())
tried("write-usr", lambda: open("/usr/kdkit-was-here", "w"))
tried("write-build", lambda: open("/build/out.txt", "w").write("x"))
print("nnp", open("/dev/null") and "ok")
'''


def test_the_filters_numbers_are_the_kernels():
    if not os.path.exists(HEADER):
        pytest.skip(f"{HEADER} is not here (linux-libc-dev)")
    with open(HEADER) as f:
        table = dict(re.findall(r"^#define __NR_(\w+) (\d+)$", f.read(), re.M))
    assert {name: str(nr) for name, nr in jail.DENIED.items()} == \
        {name: table[name] for name in jail.DENIED}
    assert (table["clone"], table["clone3"]) == (str(jail.CLONE), str(jail.CLONE3))


def test_the_filter_is_whole_instructions():
    code = jail.filter_program()
    assert len(code) % 8 == 0 and len(code) // 8 < 4096


@pytest.fixture
def jailed(tmp_path, monkeypatch):
    monkeypatch.setenv("KDKIT_SANDBOX", "jail")
    sandbox.tier.cache_clear()
    try:
        sandbox.tier()
    except sandbox.SandboxError as e:
        pytest.skip(f"the jail cannot be made here: {e}")
    yield
    sandbox.tier.cache_clear()


def test_a_jailed_build_reaches_nothing_it_should_not(tmp_path, jailed, monkeypatch):
    # A user of its own, named: its IDs must be looked up before the chroot
    # (the tree has no /etc/passwd). daemon stands in for kdkit-build.
    monkeypatch.setattr(jail, "USER", "daemon")
    assert jail.ids() != (jail.NOBODY, jail.NOBODY)
    secret = tmp_path / "SECRET"
    secret.write_text("the answers\n")
    os.chmod(secret, 0o600)
    with sandbox.session(str(tmp_path / "b")) as (side, _link):
        os.makedirs(side, exist_ok=True)
        # A root-only file put where the build can name it.
        os.link(secret, os.path.join(side, "SECRET"))
        code, text, why = sandbox.finish(sandbox.start(["python3", "-c", PROBE], [], side))
    said = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
    assert code == 0 and not why, text
    uid, gid = jail.ids()
    assert said["uid"] == f"{uid} {gid} []" and uid != 0
    assert said["socket"] == "EPERM" and said["unshare"] == "EPERM"
    assert said["ptrace"] == "EPERM" and said["clone-newuser"] == "EPERM"
    assert said["proc"] == "ENOENT" and said["secret"] == "EACCES"
    assert said["write-usr"] in ("EACCES", "EROFS") and said["write-build"] == "ok"
    # What the build wrote comes back to the grader's folder.
    assert (tmp_path / "b" / "sandbox" / "out.txt").read_text() == "x"


def test_a_jailed_build_that_runs_away_is_stopped(tmp_path, jailed):
    with sandbox.session(str(tmp_path / "b")) as (side, _link):
        os.makedirs(side, exist_ok=True)
        started = sandbox.start(["sh", "-c", "while :; do :; done"], [], side)
        code, _text, why = sandbox.finish(started, timeout=2)
    assert code != 0 and "longer than 2 s" in why


def test_an_unknown_sandbox_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv("KDKIT_SANDBOX", "docker")
    sandbox.tier.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxError, match="use bubblewrap or jail"):
            sandbox.tier()
    finally:
        sandbox.tier.cache_clear()


def test_a_user_without_namespaces_is_told_which_switch_blocks_them(tmp_path, monkeypatch):
    # Ubuntu 24.04 as a user: AppArmor refuses bubblewrap's user namespace,
    # and the jail needs root. The message names the sysctl to change.
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel" / "apparmor_restrict_unprivileged_userns").write_text("1\n")
    monkeypatch.setattr(sandbox, "PROC_SYS", str(tmp_path))
    monkeypatch.setattr(sandbox, "available", lambda: False)
    monkeypatch.setattr(sandbox, "jail_available", lambda: False)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.delenv("KDKIT_SANDBOX", raising=False)
    sandbox.tier.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxError, match=r"kernel.apparmor_restrict_unprivileged_userns is 1: 'sudo sysctl "
                           r"kernel.apparmor_restrict_unprivileged_userns=0' allows it.*grade as root"):
            sandbox.tier()
    finally:
        sandbox.tier.cache_clear()


def test_a_file_replaced_since_the_jail_was_made_is_linked_afresh(tmp_path):
    """A git checkout writes a new file in place of the old: the jail's
    link to the old one would build yesterday's kit."""
    tree = tmp_path / "kit" / "common"
    tree.mkdir(parents=True)
    (tree / "kdkit.h").write_text("old\n")
    root = tmp_path / "jail"
    jail.prepare(str(root), [str(tree)])
    inside = root / str(tree).lstrip("/")
    assert (inside / "kdkit.h").read_text() == "old\n"
    (tree / "kdkit.h.new").write_text("new\n")
    os.replace(tree / "kdkit.h.new", tree / "kdkit.h")
    (tree / "added.c").write_text("added\n")
    jail.prepare(str(root), [str(tree)])
    assert (inside / "kdkit.h").read_text() == "new\n"
    assert (inside / "added.c").read_text() == "added\n"
