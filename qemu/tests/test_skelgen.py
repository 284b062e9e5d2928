"""The skeleton generator: markers, stubs, errors, and the staleness check."""
import pytest

from course import skelgen

SOLUTION = """int f(void)
{
	/* TODO 1: compute the answer */
	int x = 6 * 7;

	return x;
	/* skel: return 0; */
	/* END TODO 1 */
}
"""


def test_strip_keeps_the_hint_and_the_stub_only():
    assert skelgen.strip(SOLUTION) == """int f(void)
{
	/* TODO 1: compute the answer */
	return 0;
}
"""


def test_todo_numbers_lists_hints_in_order():
    text = SOLUTION + SOLUTION.replace("TODO 1", "TODO 2")
    assert skelgen.todo_numbers(skelgen.strip(text)) == ["1", "2"]


@pytest.mark.parametrize("broken, message", [
    (SOLUTION.replace("\t/* END TODO 1 */\n", ""), "never closed"),
    (SOLUTION.replace("END TODO 1", "END TODO 2"), "closes no open TODO"),
    (SOLUTION.replace("int x = 6 * 7;", "/* TODO 2: nested */"), "opens inside"),
])
def test_strip_refuses_unpaired_markers(broken, message):
    with pytest.raises(skelgen.MarkerError, match=message):
        skelgen.strip(broken)


def test_check_finds_stale_and_extra_files(tmp_path, capsys):
    sol, labs = tmp_path / "solutions", tmp_path / "labs"
    (sol / "demo").mkdir(parents=True)
    (sol / "demo" / "demo.c").write_text(SOLUTION)
    assert skelgen.main([str(sol), str(labs)]) == 0
    assert skelgen.main([str(sol), str(labs), "--check"]) == 0

    (labs / "demo" / "demo.c").write_text("edited by hand\n")
    (labs / "demo" / "stray.c").write_text("\n")
    assert skelgen.main([str(sol), str(labs), "--check"]) == 1
    out = capsys.readouterr().out
    assert "demo.c differs" in out and "stray.c has no source" in out

    assert skelgen.main([str(sol), str(labs)]) == 0
    assert skelgen.main([str(sol), str(labs), "--check"]) == 0
    assert not (labs / "demo" / "stray.c").exists()
