"""qemu/probecc: the kernel Makefiles' flag probes answered from a cache,
every other compiler call passed to gcc."""
import os
import subprocess

import lab

PROBE = ["-Werror", "-fno-PIE", "-c", "-x", "c", "/dev/null", "-o"]


def run(tmp_path, cache, args, gcc_exit=0):
    """probecc with a gcc that logs its calls and exits with gcc_exit."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    gcc = bin_dir / "gcc"
    gcc.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\nexit {gcc_exit}\n')
    gcc.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin")
    return subprocess.run(["sh", lab.PROBECC, str(cache)] + args, env=env).returncode


def calls(tmp_path):
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_a_probe_is_asked_of_gcc_once_then_answered_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    assert run(tmp_path, cache, PROBE + [str(tmp_path / "a")]) == 0
    # The scratch file's name differs from probe to probe: not part of the key.
    assert run(tmp_path, cache, PROBE + [str(tmp_path / "b")]) == 0
    assert len(calls(tmp_path)) == 1
    assert (tmp_path / "b").exists()    # as gcc would have left it


def test_a_failed_probe_stays_failed(tmp_path):
    cache = tmp_path / "cache"
    assert run(tmp_path, cache, PROBE + ["x"], gcc_exit=1) == 1
    assert run(tmp_path, cache, PROBE + ["y"], gcc_exit=0) == 1
    assert len(calls(tmp_path)) == 1


def test_other_flags_are_another_probe(tmp_path):
    cache = tmp_path / "cache"
    run(tmp_path, cache, PROBE + ["a"])
    run(tmp_path, cache, ["-Wextra"] + PROBE + ["a"])
    assert len(calls(tmp_path)) == 2


def test_a_compile_always_reaches_gcc(tmp_path):
    cache = tmp_path / "cache"
    for _ in range(2):
        assert run(tmp_path, cache, ["-c", "vser.c", "-o", "vser.o"]) == 0
    assert calls(tmp_path) == ["-c vser.c -o vser.o"] * 2
    assert not cache.exists()


def test_a_cache_it_cannot_write_only_costs_time(tmp_path):
    # Under a file: no one, not even root, can make the folder.
    (tmp_path / "file").write_text("")
    cache = tmp_path / "file" / "cache"
    for name in "ab":
        assert run(tmp_path, cache, PROBE + [name], gcc_exit=0) == 0
    assert len(calls(tmp_path)) == 2
