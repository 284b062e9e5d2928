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



def test_a_figure_with_no_producer_is_found(tmp_path, monkeypatch):
    """A timing typed into a page is found; a setting the kit names is not."""
    page = tmp_path / "page.rst"
    page.write_text("A warm build takes 1.4 to 1.8 s; a boot is stopped after 60 s.\n"
                    "Strict vser: 16.6 s. The bundle is about 21 MB.\n")
    monkeypatch.setattr(doccheck, "stated_files", lambda: [str(page)])
    found = [w.split("'")[1] for w in doccheck.unsourced_figures()]
    assert found == ["1.8 s", "16.6 s", "21 MB"]
