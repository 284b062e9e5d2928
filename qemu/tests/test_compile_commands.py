"""make compile_commands.json: an editor's clangd gets the flags kbuild uses,
and they compile the student's file where it is."""
import os
import subprocess

from course import compile_commands
from kernel import source as kernel_source
from harness.lab import KIT



def test_the_students_file_compiles_with_its_entrys_flags():
    kdir = kernel_source.kernel_dir("fast")
    found = {e["file"]: e for e in compile_commands.entries("hello", kdir)}
    hello = os.path.join(KIT, "labs", "hello", "hello.c")
    assert hello in found and found[hello]["directory"] == kdir
    command = found[hello]["command"]
    assert command.endswith(f" -c -o hello.o {hello}") and ";" not in command
    # Headers resolve from the entry's directory: the file parses.
    check = command.replace(" -c -o hello.o ", " -fsyntax-only ")
    done = subprocess.run(check, shell=True, cwd=kdir, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
