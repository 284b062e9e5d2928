"""The course checks' helpers: page text, solution lines, settings."""
from selfcheck import doccheck


def test_page_text_drops_line_numbers_and_joins_highlighted_code(tmp_path):
    page = tmp_path / "p.html"
    page.write_text('<pre><span class="linenos">12</span><span class="k">return</span>'
                    '\t<span class="o">-</span>EINVAL;</pre>')
    assert doccheck.page_text(str(page)) == "return -EINVAL;"


def test_solution_only_lines_are_what_the_skeleton_lacks():
    lines = doccheck.solution_only_lines("hello")
    assert 'if (snprintf(buf, size, "Hello, %s!", name) >= size)' in lines
    # Kept in the skeleton: the hint and the signature are not secrets.
    assert not [l for l in lines if "TODO" in l or l.startswith("ssize_t hello_greet(")]


def test_settings_include_make_variables_and_environment():
    make, env = doccheck.documented_settings()
    assert {"LAB", "SRC", "STRICT", "AUDIENCE", "PRIVATE"} <= set(make)
    assert {"KDKIT_CACHE", "KDKIT_TIMEOUT", "KDKIT_PRIVATE"} <= set(env)

