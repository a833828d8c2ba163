"""report/fonts.py: figure labels in a script the default font lacks (a Korean study's task names)
are drawn with an installed font that has them, or said once when none has them."""
import warnings

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from matplotlib import font_manager

from dontstop.report import fonts
from dontstop.report.fonts import font_families, label_fonts

TASK_NAMES = ["논란 댓글", "답글"]   # tests/korean_study.py's task names


def hangul_font(path, characters: str, family: str = "Test Hangul") -> str:
    """A TrueType font file drawing `characters` (each a filled square); returns its path."""
    names = [".notdef", *(f"uni{ord(c):04X}" for c in characters)]
    pen = TTGlyphPen(None)
    for x, y in ((100, 0), (100, 600), (600, 600), (600, 0)):
        (pen.lineTo if x != 100 or y != 0 else pen.moveTo)((x, y))
    pen.closePath()
    square = pen.glyph()
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({ord(c): name for c, name in zip(characters, names[1:])})
    builder.setupGlyf({name: square for name in names})
    builder.setupHorizontalMetrics({name: (700, 100) for name in names})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": family, "styleName": "Regular"})
    builder.setupOS2()
    builder.setupPost()
    builder.save(str(path))
    return str(path)


@pytest.fixture
def system_fonts(monkeypatch):
    """A machine whose only fonts are matplotlib's own (whatever this one has installed) plus
    the files the test puts in the returned list, as if installed after matplotlib's font cache
    was built."""
    bundled = Path(matplotlib.get_data_path())
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [entry for entry in font_manager.fontManager.ttflist
                                                              if Path(entry.fname).is_relative_to(bundled)])
    installed: list[str] = []
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *arguments, **options: list(installed))
    fonts._register_system_fonts.cache_clear()
    yield installed
    fonts._register_system_fonts.cache_clear()


def draw(title: str) -> list[str]:
    """Render a figure titled `title`; the warnings matplotlib gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", append=True)   # after any ignore filter label_fonts set
        fig, ax = plt.subplots()
        ax.set_title(title)
        fig.canvas.draw()
        plt.close(fig)
    return [str(w.message) for w in caught]


def test_latin_labels_keep_the_default_font(system_fonts):
    assert font_families(["DAPT + TAPT", "ACL-Roles", "¬DAPT − RoBERTa ×100"]) == (["sans-serif"], "")


def test_a_font_installed_with_the_labels_characters_is_added_after_the_default(system_fonts, tmp_path, capsys):
    """Found on the system although matplotlib's font cache predates it (apt-get install after
    the first plot)."""
    system_fonts.append(hangul_font(tmp_path / "hangul.ttf", "".join(sorted(set("".join(TASK_NAMES)) - {" "}))))
    assert font_families(TASK_NAMES) == (["sans-serif", "Test Hangul"], "")
    with label_fonts(TASK_NAMES):
        assert not [message for message in draw(TASK_NAMES[0]) if "missing from font" in message]
    assert capsys.readouterr().err == ""


def test_characters_no_font_has_are_said_once(system_fonts, tmp_path, capsys):
    """Without a font for some characters (matplotlib's "Last Resort" boxes do not count): one
    line naming them, no warning per glyph; the characters an installed font has are drawn."""
    system_fonts.append(hangul_font(tmp_path / "partial.ttf", "답글"))
    assert font_families(TASK_NAMES) == (["sans-serif", "Test Hangul"], "논댓란")
    assert draw(TASK_NAMES[0])   # matplotlib warns per glyph by itself
    with label_fonts(TASK_NAMES):
        assert not [message for message in draw(TASK_NAMES[0]) if "missing from font" in message]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dontstop: warning: no installed font draws '논댓란'")
    assert "fonts-noto-cjk" in err
    assert matplotlib.rcParams["font.family"] == ["sans-serif"]   # restored after the figures


def test_the_hint_names_a_font_package_that_has_the_missing_script(system_fonts, capsys):
    """Thai and Hindi task names were told to install fonts-noto-cjk, which has neither script."""
    with label_fonts(["ความเห็น", "टिप्पणी"]):
        pass
    err = capsys.readouterr().err
    assert "apt-get install fonts-noto-core)" in err and "cjk" not in err
    assert fonts.install_hint("댓글ข่าว").startswith("install a font that has them (Debian: apt-get install "
                                                  "fonts-noto-cjk fonts-noto-core)")


def test_a_dollar_sign_in_a_label_is_drawn_as_text(system_fonts):
    """A study's task named `Tweets #$AAPL vs #$TSLA` was read as mathtext: a ParseException
    traceback while drawing the plots, after every job had run."""
    title = "Tweets #$AAPL vs #$TSLA"
    with pytest.raises(ValueError, match="Expected end of text"):
        draw(title)
    with label_fonts([title]):
        assert draw(title) == []
    assert matplotlib.rcParams["text.parse_math"]   # restored after


def test_a_names_markup_characters_are_escaped_in_markdown_and_latex():
    """A `|` in a study's name split its Markdown row one column on (the DAPT score stood under
    ¬DAPT); `$ { } \\ ^ ~` reached the LaTeX table as markup."""
    from dontstop.report.render import Grid, to_latex, to_markdown

    grid = Grid(["Task", "DAPT"], [["Reviews | IMDb 50%", "59.7"], ["a$b{c}\\d^e~f", "1.0"]], bold={(0, 1)})
    markdown = to_markdown(grid, "Table")
    assert "| Reviews \\| IMDb 50% | **59.7** |" in markdown
    assert [line.replace("\\|", "").count("|") for line in markdown.splitlines()[2:]] == [3] * 4
    assert (r"a\$b\{c\}\textbackslash{}d\^{}e\~{}f & 1.0 \\" in to_latex(grid, "Table")
            and r"Reviews \textbar{} IMDb 50\% & \textbf{59.7} \\" in to_latex(grid, "Table"))
