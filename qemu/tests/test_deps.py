"""qemu/deps.sh: what is missing is named by what uses it and the package
that brings it, for apt-get or dnf, in one line."""
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
DEPS = os.path.join(os.path.dirname(HERE), "deps.sh")


def machine(tmp_path, without=(), fake=None):
    """A PATH with this machine's commands, less some, plus fakes; as a
    user who is not root and has no sudo."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for d in ("/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        for name in os.listdir(d):
            if name not in (*without, "sudo", "id") and not (bindir / name).exists():
                (bindir / name).symlink_to(os.path.join(d, name))
    for name, text in {"id": "#!/bin/sh\necho 1000\n", **(fake or {})}.items():
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    return dict(os.environ, PATH=str(bindir), PYTHON="/usr/bin/python3")


def deps(env, *groups):
    return subprocess.run(["/bin/bash", DEPS, *groups], env=env, capture_output=True, text=True)


def test_a_missing_tool_is_named_with_its_debian_package(tmp_path):
    proc = deps(machine(tmp_path, without=("lz4",)), "build", "run")
    assert proc.returncode == 1
    assert proc.stderr == ("setup: missing lz4; run 'sudo make setup', or as root: "
                           "apt-get install lz4\n")


def test_fedora_gets_dnf_names(tmp_path):
    env = machine(tmp_path, without=("lz4", "qemu-system-x86_64", "apt-get"),
                  fake={"dnf": "#!/bin/sh\nexit 1\n"})
    proc = deps(env, "build", "run")
    assert proc.returncode == 1
    assert proc.stderr.endswith("as root: dnf install lz4 qemu-system-x86-core\n")


def test_python_older_than_3_9_is_refused_first(tmp_path):
    old = "#!/bin/sh\n[ \"$1\" = -V ] && { echo 'Python 3.8.18'; exit 0; }\nexit 1\n"
    env = machine(tmp_path, fake={"python3.8": old})
    env["PYTHON"] = "python3.8"
    proc = deps(env, "run")
    assert proc.returncode == 1
    assert proc.stderr == ("setup: kdkit needs Python 3.9 or newer; python3.8 is Python 3.8.18; "
                           "give another with PYTHON=\n")


def test_nothing_missing_is_quiet(tmp_path):
    proc = deps(machine(tmp_path), "build", "run")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
