"""Check a student's C source before it is compiled for grading.

Code of the student's own must come from C the compiler translates, where
the decoder and the object check can follow it: no inline assembly (the
identifiers asm, __asm, __asm__, spelled or made by pasting), no line
directives (#line, or a line marker "# 12 file") that would make code or
messages seem to come from elsewhere, and no CPU instruction by name
(__builtin_ia32_*). The source is read as the compiler's first phases
read it: spliced lines, comments, literals and digraphs (%: is #).

Pasting (##) can make an identifier no spelling shows: guard() adds
GCC's poison for the asm identifiers after the file's last #include, so
the compiler refuses one made by any macro used after it; the kernel's
own macros, defined before, keep theirs.
"""
import re

ASM = {"asm", "__asm", "__asm__"}
BUILTIN_CPU = "__builtin_ia32_"
POISON = "#pragma GCC poison asm __asm __asm__"

_TOKEN = re.compile(r"""
    (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<literal>(?:u8|[uUL])?(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'))
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<number>\.?\d(?:[eEpP][+-]|[\w.])*)
  | (?P<newline>\n)
  | (?P<space>[ \t\f\v\r]+)
  | (?P<hash>%:%:|\#\#|%:|\#)
  | (?P<other>.)
""", re.X | re.S)


def _spliced(text):
    """(text without backslash-newlines, the original offset of each character)."""
    out, at, i = [], [], 0
    while i < len(text):
        if text.startswith("\\\n", i):
            i += 2
            continue
        out.append(text[i])
        at.append(i)
        i += 1
    return "".join(out), at


def tokens(text):
    """(kind, value, offset in text, first on its logical line) for each
    token the compiler sees; comments and spaces are left out (a comment
    is a space, so a directive may follow one)."""
    body, at = _spliced(text)
    first = True
    for m in _TOKEN.finditer(body):
        kind = m.lastgroup
        if kind == "newline":
            first = True
        elif kind not in ("space", "comment"):
            yield kind, m[0], at[m.start()], first
            first = False


def _line(text, offset):
    return text.count("\n", 0, offset) + 1


def _directives(toks):
    """[(name, first token, index of the token after its line)]."""
    found = []
    for i, (kind, value, _off, first) in enumerate(toks):
        if kind == "hash" and first and value in ("#", "%:"):
            name = toks[i + 1][1] if i + 1 < len(toks) and not toks[i + 1][3] else ""
            end = next((j for j in range(i + 1, len(toks)) if toks[j][3]), len(toks))
            found.append((name, i, end))
    return found


def _guard_at(directives, count):
    """Index of the first token after the file's last #include and any
    #if around it, or None if no token follows."""
    depth, pending, cut = 0, False, None
    for word, _i, end in directives:
        depth += {"if": 1, "ifdef": 1, "ifndef": 1, "endif": -1}.get(word, 0)
        pending = pending or word == "include"
        if pending and depth == 0:
            cut, pending = end, False
    return cut if cut is not None and cut < count else None


def check(name, text):
    """One line for each thing in the source that hides where code comes from."""
    problems = []
    toks = list(tokens(text))
    directives = _directives(toks)
    for word, i, _end in directives:
        if word == "line" or word[:1].isdigit():
            problems.append(f"{name}:{_line(text, toks[i][2])}: a line directive ('#{word}'), "
                            "which makes code seem to come from another place; remove it")
    for kind, value, off, _first in toks:
        if kind == "ident" and value in ASM:
            problems.append(f"{name}:{_line(text, off)}: inline assembly ('{value}'); a driver of "
                            "the labs is written in C: use the kernel's functions and macros")
        elif kind == "ident" and value.startswith(BUILTIN_CPU):
            problems.append(f"{name}:{_line(text, off)}: {value}, a CPU instruction by name; use "
                            "the kernel's functions and macros")
    # Code before the poison could use a macro that pastes an asm together.
    in_directive = {j for _w, i, end in directives for j in range(i, end)}
    cut = _guard_at(directives, len(toks))
    last = max((end for word, _i, end in directives if word == "include"), default=0)
    code_before = any(j not in in_directive for j in range(cut if cut is not None else last))
    if code_before and any(v in ("##", "%:%:") for _k, v, _o, _f in toks):
        problems.append(f"{name}: code before the last #include, in a file that pastes tokens "
                        "(##); put every #include at the top of the file")
    return problems


def guard(text):
    """text with the asm identifiers poisoned after its last #include (and
    after any #if around it), line numbers kept by a #line of the kit's."""
    toks = list(tokens(text))
    cut = _guard_at(_directives(toks), len(toks))
    if cut is None:
        return text
    off = toks[cut][2]
    column = off - (text.rfind("\n", 0, off) + 1)
    return text[:off] + f"\n{POISON}\n#line {_line(text, off)}\n" + " " * column + text[off:]
