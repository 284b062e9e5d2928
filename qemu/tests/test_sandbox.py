"""Grading builds a student's files in a sandbox (qemu/harness/sandbox.py): a file
that reaches for the answers or the host's files does not build, a runaway
build ends within its limits, and no name a student chose reaches make.
These build against the kit kernel, so they need 'make setup' first."""
import json
import os
import shutil
import subprocess
import time

import pytest

from grader import grade
from harness import kbuild, objcheck
from harness import sandbox
from harness.lab import KIT
from kernel import source as kernel_source

HERE = os.path.dirname(os.path.abspath(__file__))
SOLUTION = os.path.join(KIT, "solutions", "hello", "hello.c")
PRIVATE = os.path.join(HERE, "fixtures", "private", "hello", "hello_private_test.c")
with open("/etc/passwd") as f:
    PASSWD = f.readline().strip()        # "root:x:0:0:root:/root:/bin/bash"



@pytest.fixture(autouse=True, params=sandbox.TIERS)
def tier(request, monkeypatch):
    """Every case here runs in each sandbox tier this machine can make."""
    monkeypatch.setenv("KDKIT_SANDBOX", request.param)
    sandbox.tier.cache_clear()
    try:
        sandbox.tier()
    except sandbox.SandboxError as e:
        pytest.skip(f"the {request.param} sandbox cannot run here: {e}")
    yield request.param
    sandbox.tier.cache_clear()


def solution_with(line):
    with open(SOLUTION) as f:
        return line + "\n" + f.read()


HOSTILE = {
    # The answer, through the include path of the lab's headers (common/).
    "includes-the-solution": '#include "../solutions/hello/hello.c"',
    "includes-the-solution-by-path": f'#include "{SOLUTION}"',
    "includes-a-private-suite": f'#include "{PRIVATE}"',
    # A host file into the compiler's messages, or into the module.
    "includes-etc-passwd": solution_with('#include "/etc/passwd"'),
    "incbins-etc-passwd": solution_with('asm(".section .rodata\\n.incbin \\"/etc/passwd\\"\\n.previous");'),
    # Runaway builds: no end to the input, or input that never comes
    # (stdin is closed: the include is empty, and the tests find nothing).
    "includes-dev-zero": solution_with('#include "/dev/zero"'),
    "includes-dev-stdin": '#include "/dev/stdin"',
}


def all_output(g, out):
    text = "\n".join(g.notes + [s.why for s in g.scores]
                     + [l for lines in g.details.values() for l in lines])
    for dirpath, _dirs, files in os.walk(out):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                text += fh.read().decode("utf-8", "replace")
    return text + json.dumps(grade.gradescope([g]))


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_build_that_reaches_out_scores_0_and_leaks_nothing(tmp_path, name):
    sub = tmp_path / "submission"
    sub.mkdir()
    source = HOSTILE[name]
    (sub / "hello.c").write_text(source if "\n" in source else source + "\n")
    start = time.monotonic()
    g = grade.grade_lab("student", "hello", str(sub), str(tmp_path / "out"), False)
    secs = time.monotonic() - start
    said = all_output(g, tmp_path / "out")
    # An assembler directive in the source is refused before it builds.
    assert g.points == 0 and ("hello did not build:" in g.notes or name == "incbins-etc-passwd"
                              and "inline assembly ('asm')" in g.notes[0]), said[-3000:]
    assert PASSWD not in said
    assert "hello_module_init" not in "\n".join(g.notes)    # no solution line echoed
    assert secs < sandbox.TIME_LIMIT + 30


def test_the_solution_builds_in_the_sandbox_with_full_marks(tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    shutil.copy(SOLUTION, sub)
    g = grade.grade_lab("student", "hello", str(sub), str(tmp_path / "out"), False)
    assert g.points == g.max_points == 10, g.notes


def test_a_student_folder_name_never_reaches_make(tmp_path, monkeypatch):
    """Kbuild expands $(shell ...) in M=; the folder's name must not get there."""
    root = tmp_path / "submissions"
    evil = root / "x$(shell\ttouch\tPWNED)"
    evil.mkdir(parents=True)
    shutil.copy(SOLUTION, evil)
    monkeypatch.chdir(tmp_path)
    assert grade.main(["--submissions", str(root), "--labs", "hello", "--jobs", "1",
                       "--out", str(tmp_path / "grades")]) == 0
    found = [os.path.join(d, f) for top in (KIT, str(tmp_path), os.path.expanduser("~/.cache/kdkit"))
             for d, _s, fs in os.walk(top) for f in fs if f == "PWNED"]
    assert not found
    with open(tmp_path / "grades" / "grades.csv") as f:
        assert f.read().splitlines()[1].endswith(",10,10,")


def test_a_linked_lab_folder_is_refused(tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    os.symlink(os.path.join(KIT, "solutions", "hello"), sub / "hello")
    g = grade.grade_lab("student", "hello", str(sub), str(tmp_path / "out"), False)
    assert g.points == 0 and "hello/: a symbolic link, not a folder; refused" in g.notes


def test_grading_leaves_no_checkpatch_cache_in_the_kit(tmp_path):
    before = {f for f in os.listdir(KIT) if f.startswith(".checkpatch")}
    sub = tmp_path / "submission"
    sub.mkdir()
    shutil.copy(SOLUTION, sub)
    grade.style([str(sub / "hello.c")])
    assert {f for f in os.listdir(KIT) if f.startswith(".checkpatch")} == before
    assert not [f for f in os.listdir(sub) if f.startswith(".checkpatch")]


def graded_with(tmp_path, code):
    """The hello solution with code added, graded as a submission."""
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "hello.c").write_text(solution_with("") + "\n" + code)
    return grade.grade_lab("student", "hello", str(sub), str(tmp_path / "out"), False)


REFUSED = {
    "its-own-kunit-suite": ("#include <kunit/test.h>\n"
                            "static void fake(struct kunit *test) { }\n"
                            "static struct kunit_case fake_cases[] = { KUNIT_CASE(fake), {} };\n"
                            "static struct kunit_suite fake_suite = { .name = \"hello_greet\",\n"
                            "\t.test_cases = fake_cases };\n"
                            "kunit_test_suite(fake_suite);\n", "a KUnit suite or table of its own"),
    "a-section-of-its-own": ('static int forged __section(".kdkit_results") __used = 1;\n',
                             "section .kdkit_results: not one the kernel's build makes"),
    "the-module-structure": ('static char m[64] __section(".gnu.linkonce.this_module") __used;\n',
                             "section .gnu.linkonce.this_module"),
    "opens-a-file": ("#include <linux/fs.h>\n"
                     "int peek(void);\nint peek(void)\n"
                     "{ return IS_ERR(filp_open(\"/etc/passwd\", O_RDONLY, 0)); }\n",
                     "calls filp_open, which opens files"),
    "maps-the-results-port": ("#include <linux/io.h>\n"
                              "void __iomem *forge(void);\n"
                              "void __iomem *forge(void) { return ioport_map(0x2f8, 8); }\n",
                              "calls ioport_map, which maps I/O ports"),
    "hooks-the-tests-by-name": ("#include <linux/kprobes.h>\n"
                                "static struct kprobe kp = { .symbol_name = \"kunit_add_action\" };\n"
                                "int hook(void);\nint hook(void) { return register_kprobe(&kp); }\n",
                                "calls register_kprobe, which looks up or hooks kernel functions"),
    "silences-the-detectors": ("#include <linux/debug_locks.h>\n"
                               "int quiet(void);\nint quiet(void) { return debug_locks_off(); }\n",
                               "calls debug_locks_off, which turns off a detector"),
    "port-io-to-the-results-port": ("#include <linux/io.h>\n"
                                    "void forge(void) { outb('o', 0x2f8); }\n",
                                    "forge holds the port I/O instruction 'out'"),
    "restarts-the-machine": ("#include <linux/reboot.h>\n"
                             "void stop(void);\nvoid stop(void) { kernel_restart(NULL); }\n",
                             "calls kernel_restart, which stops or restarts the machine"),
    "a-constructor": ("static void __attribute__((constructor)) __used early(void) { }\n",
                      "constructor early: code that would run before the tests"),
    # Linked into one module with the suites, a definition would take the
    # place of the one the tests call.
    "its-own-strcmp": ("int strcmp(const char *a, const char *b) { return 0; }\n",
                       "defines strcmp, which the kernel or the kit defines"),
    "its-own-kunit-assertion": ("void kunit_do_failed_assertion(void);\n"
                                "void kunit_do_failed_assertion(void) { }\n",
                                "defines kunit_do_failed_assertion, which the kernel or the kit"),
    "its-own-kit-helper": ("int kdkit_driver_init(void);\n"
                           "int kdkit_driver_init(void) { return 0; }\n",
                           "defines kdkit_driver_init, which the kernel or the kit defines"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_an_object_that_reaches_for_the_harness_is_refused(tmp_path, name):
    code, says = REFUSED[name]
    g = graded_with(tmp_path, code)
    assert g.points == 0, g.notes
    assert any(says in n for n in g.notes), g.notes
    assert all(s.why.startswith("refused: hello.o: ") for s in g.scores)


def test_an_object_of_megabytes_of_code_is_refused_unread(tmp_path):
    """Its disassembly would run to gigabytes: it is refused by its size,
    before any tool reads it."""
    src = tmp_path / "big.s"
    src.write_text(".text\n.globl f\nf:\n.fill 4000000,1,0x90\nret\n")
    subprocess.run(["as", "-o", str(tmp_path / "big.o"), str(src)], check=True)
    assert objcheck.check("vser", [str(tmp_path / "big.o")]) == \
        ["big.o: 3906 KiB of code, where a lab driver has a few; refused unread"]


def test_checkpatch_that_crawls_costs_a_bounded_time(tmp_path, monkeypatch):
    """Thousands of nested ifs keep checkpatch going for minutes: it is
    stopped, and the style notes say so (style earns no points)."""
    monkeypatch.setattr(grade, "STYLE_SECONDS", 0.01)
    path = tmp_path / "hello.c"
    path.write_text("int f(int x)\n{\n" + "if (x)\n" * 20000 + "return 1;\nreturn 0;\n}\n")
    found = grade.style([str(path)])
    assert found["hello.c"] == ["hello.c:1: CHECK: checkpatch gave up after 0.01 s"]


def test_the_module_built_alone_is_the_same_compilation(tmp_path):
    """vser is also built alone (for its userspace suite), as module vser
    rather than vser_kunit: it is linked from the very objects the test
    module has, so code only a second compilation would see (#if on the
    module's name) is in neither."""
    sub = tmp_path / "submission"
    sub.mkdir()
    with open(os.path.join(KIT, "solutions", "vser", "vser.c")) as f:
        (sub / "vser.c").write_text(f.read() + "\n#define kmod_vser 1\n#if __KBUILD_MODNAME\n"
                                    + REFUSED["opens-a-file"][0] + "#endif\n")
    built, _out, _origin = kbuild.build_sandboxed("vser", str(sub), kernel_source.kernel_dir("fast"),
                                                  str(tmp_path / "build"))
    calls = lambda ko: subprocess.run(["nm", "-u", ko], capture_output=True, text=True).stdout
    assert built.plain and "filp_open" not in calls(built.plain)
    assert "vser_open" in subprocess.run(["nm", built.plain], capture_output=True, text=True).stdout


def test_an_instructor_can_allow_a_refused_call(tmp_path, monkeypatch):
    monkeypatch.setenv("KDKIT_ALLOW_IMPORTS", "kernel_read, filp_open")
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "hello.c").write_text(solution_with("") + "\n" + REFUSED["opens-a-file"][0])
    g = grade.grade_lab("student", "hello", str(sub), str(tmp_path / "out"), False)
    assert g.points == 10, g.notes


def test_a_call_the_references_do_not_make_is_graded_not_refused(tmp_path):
    """A correct driver written another way (cdev_alloc() dropped with
    kobject_put() on an error path, as fs/char_dev.c intends) keeps its
    points; the instructor sees the call named."""
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "hello.c").write_text(solution_with("#include <linux/kobject.h>") + "\n"
                                 "void drop(struct kobject *k);\n"
                                 "void drop(struct kobject *k) { kobject_put(k); }\n")
    g = grade.grade_lab("student", "hello", str(sub), str(tmp_path / "out"), False)
    assert g.points == 10, g.notes
    assert any("calls kobject_put, which the reference solutions do not" in n for n in g.notes), g.notes


FORGER = """#include <kunit/test.h>
static void forged_pass(struct kunit *test) { }

/* Make every case of the test module a no-op that passes. */
static void forge(void)
{
	struct kunit_suite **suites = THIS_MODULE->kunit_suites;
	struct kunit_case *c;
	int i;

	for (i = 0; i < 2; i++)
		for (c = suites[i]->test_cases; c->run_case; c++)
			c->run_case = forged_pass;
}

static int __init hello_init(void)
{
	forge();
"""


def test_a_driver_that_rewrites_the_tests_scores_0(tmp_path):
    """The student's code runs inside the test module; kdkit.ko hashes the
    cases before they run and after, and a change fails the whole run."""
    sub = tmp_path / "submission"
    sub.mkdir()
    with open(SOLUTION) as f:
        text = f.read()
    assert "static int __init hello_init(void)\n{\n" in text
    (sub / "hello.c").write_text(text.replace("static int __init hello_init(void)\n{\n", FORGER))
    g = grade.grade_lab("student", "hello", str(sub), str(tmp_path / "out"), False)
    assert g.points == 0, g.notes
    assert any("changed its own test cases" in n for n in g.notes), g.notes


def test_only_the_labs_interface_stays_global(tmp_path):
    """The student's object is linked with the kit's: of its globals, only
    what the kit's objects call (and the module's entry points) stays
    global, never a name the kernel or the kit defines, so that no
    definition of the student's can stand in for the one a test means."""
    def assemble(name, text):
        (tmp_path / f"{name}.s").write_text(text)
        subprocess.run(["as", "-o", str(tmp_path / f"{name}.o"), str(tmp_path / f"{name}.s")],
                       check=True)
        return str(tmp_path / f"{name}.o")
    kit = assemble("kit", ".text\n.globl t\nt:\ncall lab_fn\ncall strcmp\nret\n")
    mine = assemble("mine", ".text\n" + "".join(f".globl {n}\n{n}:\nret\n" for n in
                    ("lab_fn", "strcmp", "helper", "init_module")))
    keep = objcheck.interface([mine], [kit], {"strcmp", "t", "init_module"})
    assert keep == {"lab_fn", "init_module"}
    objcheck.localize(mine, keep, str(tmp_path / "linked.o"))
    kinds = {f[2]: f[1] for f in (l.split() for l in subprocess.run(
        ["nm", str(tmp_path / "linked.o")], capture_output=True, text=True).stdout.splitlines())}
    assert kinds == {"lab_fn": "T", "init_module": "T", "strcmp": "t", "helper": "t"}


HIDDEN = {
    # Port I/O behind a segment prefix, which a mnemonic match missed.
    "prefixed-port-io": (".text\n.globl f\nf:\n.byte 0x2e, 0xee\nret\n",
                         "f holds the port I/O instruction 'out'"),
    # An "out; ret" hidden in a mov's immediate, reached by a jump into it.
    "jump-into-an-immediate": (".text\n.globl f\nf:\njmp 1f+1\n1: movb $0xee, %al\nret\n",
                               "f leads into the middle of an instruction (.text+0x3)"),
    "a-control-register-write": (".text\n.globl f\nf:\nmov %rax, %cr4\nret\n",
                                 "f holds the privileged instruction 'mov to %cr4'"),
}


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_code_hidden_from_a_linear_reading_is_refused(tmp_path, name):
    text, says = HIDDEN[name]
    (tmp_path / "h.s").write_text(text)
    subprocess.run(["as", "-o", str(tmp_path / "h.o"), str(tmp_path / "h.s")], check=True)
    assert any(says in p for p in objcheck.check("hello", [str(tmp_path / "h.o")])), \
        objcheck.check("hello", [str(tmp_path / "h.o")])


def test_a_pointer_into_the_middle_of_a_function_is_refused(tmp_path):
    """Plain C can call bytes inside another instruction (an immediate
    chosen to read as "out; ret"): the pointer's relocation shows it."""
    (tmp_path / "c.c").write_text(
        "int pick(int x);\nint pick(int x) { return x == 0x00c3ee00 ? 1 : 2; }\n"
        "void forge(void);\nvoid forge(void) { ((void (*)(void))((char *)pick + 7))(); }\n")
    subprocess.run(["gcc", "-O2", "-fno-asynchronous-unwind-tables", "-c", "-o",
                    str(tmp_path / "c.o"), str(tmp_path / "c.c")], check=True)
    assert objcheck.check("hello", [str(tmp_path / "c.o")]) == \
        ["c.o: .text leads into the middle of an instruction (.text+0x7): code hidden in other code's bytes"]


SOURCE_REFUSED = {
    "inline-asm": ('void f(void);\nvoid f(void) { asm volatile("nop"); }\n', "inline assembly ('asm')"),
    "spliced-asm": ('void f(void);\nvoid f(void) { __as\\\nm__ volatile("nop"); }\n',
                    "inline assembly ('__asm__')"),
    "line-directive": ('#line 7 "kunit/hello/hello_greet_test.c"\n', "a line directive ('#line')"),
    "digraph-line-marker": ('%:  7 "kit.c"\n', "a line directive ('#7')"),
    "cpu-builtin": ("void f(void);\nvoid f(void) { __builtin_ia32_pause(); }\n",
                    "__builtin_ia32_pause, a CPU instruction by name"),
}


@pytest.mark.parametrize("name", sorted(SOURCE_REFUSED))
def test_source_that_hides_where_code_comes_from_is_refused(tmp_path, name):
    code, says = SOURCE_REFUSED[name]
    g = graded_with(tmp_path, code)
    assert g.points == 0, g.notes
    assert any(says in n for n in g.notes), g.notes


def test_asm_made_by_pasting_does_not_compile(tmp_path):
    """No spelling shows it: the compiler, given GCC's poison for the asm
    names after the file's includes, refuses the pasted one."""
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "hello.c").write_text(solution_with("") + "\n#define JOIN(a, b) a##b\n"
                                 "void f(void);\nvoid f(void) { JOIN(__as, m__) volatile(\"nop\"); }\n")
    g = grade.grade_lab("student", "hello", str(sub), str(tmp_path / "out"), False)
    assert g.points == 0, g.notes
    assert any('attempt to use poisoned "__asm__"' in n for n in g.notes), g.notes


def test_a_device_table_string_that_writes_code_into_the_module_is_refused(tmp_path):
    """modpost copies a device table's strings into the module's generated
    part (<module>.mod.c) unescaped: a compatible string that closes the
    quotes writes code there, after the object check. The generated part
    is checked against the kit's own."""
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "hello.c").write_text(solution_with("") + "\n#include <linux/mod_devicetable.h>\n"
        "static const struct of_device_id smuggled_ids[] = {\n"
        '\t{ .compatible = "x\\");asm(\\".pushsection\\\\t.text\\\\n.byte\\\\t0xee,0xc3\\\\n'
        '.popsection\\");MODULE_ALIAS(\\"y" },\n\t{}\n};\nMODULE_DEVICE_TABLE(of, smuggled_ids);\n')
    g = grade.grade_lab("student", "hello", str(sub), str(tmp_path / "out"), False)
    assert g.points == 0, g.notes
    assert any("hello_kunit.mod.o: section .text holds 4 bytes where modpost writes 0" in n
               for n in g.notes), g.notes
