"""qemu/harness/probes.mk: the kernel Makefiles' flag probes answered from a table,
a probe the table lacks run as kbuild would run it."""
import os
import subprocess

from harness import kbuild
from harness.lab import KIT
from kernel import source as kernel_source

# try-run and cc-option as scripts/Makefile.compiler has them, in short.
MAKEFILE = r"""
TMPOUT := $(CURDIR)/.tmp
try-run = $(shell set -e; if ($(1)) >/dev/null 2>&1; then echo "$(2)"; else echo "$(3)"; fi)
cc-option = $(call try-run,$(CC) -Werror $(FLAGS) $(1) -c -x c /dev/null -o "$$TMP",$(1),$(2))
A := $(call cc-option,-fgood)
B := $(call cc-option, -fbad,-fother)
C := $(call try-run,$(CC) -DX=a:b,-Dv=x:y z,no)
all: ; @echo 'A=[$(A)] B=[$(B)] C=[$(C)]'
"""


def make(tmp_path, flags="-O2", record=None):
    """The Makefile above with probes.mk, a gcc that logs its calls and
    fails on -fbad; returns (what it printed, gcc's calls)."""
    (tmp_path / "Makefile").write_text(MAKEFILE)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    gcc = bin_dir / "gcc"
    gcc.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\n'
                   'case "$*" in *-fbad*) exit 1 ;; esac\n')
    gcc.chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin")
    args = ["make", "-s", "-C", str(tmp_path), "CC=gcc", f"FLAGS={flags}",
            f"--eval=include {kbuild.PROBES}", f"kdkit-probe-table={tmp_path}/table.mk"]
    out = subprocess.run(args + ([f"kdkit-probe-record={record}"] if record else []),
                         capture_output=True, text=True, env=env, check=True).stdout
    return out.strip(), calls.read_text().splitlines()


ANSWERS = "A=[-fgood] B=[-fother] C=[-Dv=x:y z]"


def test_probes_run_once_then_come_from_the_table(tmp_path):
    out, calls = make(tmp_path, record=tmp_path / "table.mk")
    assert out == ANSWERS
    assert len(calls) == 3
    out, calls = make(tmp_path)
    assert out == ANSWERS    # a failed probe too, and an answer with = : and a space
    assert calls == []


def test_other_flags_are_other_probes_and_run(tmp_path):
    make(tmp_path, record=tmp_path / "table.mk")
    out, calls = make(tmp_path, flags="-O1")
    assert out == ANSWERS
    assert len(calls) == 2     # the two cc-options; C does not use the flags


def test_without_a_table_every_probe_runs(tmp_path):
    out, calls = make(tmp_path)
    assert out == ANSWERS
    assert len(calls) == 3
    assert not (tmp_path / "table.mk").exists()


def test_a_module_builds_with_the_same_command_with_and_without_the_table(tmp_path):
    kdir = kernel_source.kernel_dir("fast")
    kbuild.warm_probes(kdir)
    commands = []
    for name, extra in (("plain", []), ("table", kbuild.kbuild_probes(kdir))):
        d = tmp_path / name
        d.mkdir()
        (d / "Kbuild").write_text(f"ccflags-y := -I{KIT}/common\nobj-m := hello.o\n")
        (d / "hello.c").write_text(open(os.path.join(KIT, "solutions", "hello", "hello.c")).read())
        subprocess.run(["make", "-s", "-C", kdir, f"M={d}", *extra, "hello.o"], check=True,
                       capture_output=True)
        commands.append((d / ".hello.o.cmd").read_text().splitlines()[0].replace(str(d), "M"))
    assert commands[0] == commands[1]
