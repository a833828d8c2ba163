"""Fonts for figure labels in any script. matplotlib's default font (DejaVu Sans) has no Hangul,
kana, Han or Thai: a study with its own task names in Korean got a box for every such character
and a warning per glyph. `label_fonts(texts)` puts installed fonts that draw the labels' other
characters after the default in `font.family` (matplotlib falls back glyph by glyph along that
list) and, for characters no installed font draws, prints one line naming them and what to install;
`use_label_fonts(texts)` does the same for a whole session (the results notebook).
"""
from __future__ import annotations

import contextlib
import functools
import sys
import unicodedata
import warnings
from typing import Iterable, Iterator

import matplotlib
import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

# matplotlib ships "Last Resort High-Efficiency": it maps every code point to a box naming the
# character's Unicode block, a placeholder, not a drawing of the character.
PLACEHOLDER_FONT = "Last Resort"
# Fonts with the missing characters, for the one-line hint (Debian's packages; other systems have
# their own): Noto CJK for Han, kana and Hangul; Noto's core fonts for Thai, Devanagari and most
# other scripts (fonts-noto-cjk, the only one named before, has neither Thai nor Devanagari).
CJK_NAMES = ("CJK", "HANGUL", "HIRAGANA", "KATAKANA", "BOPOMOFO", "IDEOGRAPHIC", "KANGXI", "HALFWIDTH")
HINT = "install a font that has them (Debian: apt-get install {packages}) and rerun `dontstop aggregate`"


@functools.cache
def _characters(font_file: str) -> frozenset[int]:
    """The code points a font file maps to a glyph (its character map)."""
    try:
        return frozenset(FT2Font(font_file).get_charmap())
    except (OSError, RuntimeError, ValueError):   # a font file FreeType cannot read covers nothing
        return frozenset()


@functools.cache
def _register_system_fonts() -> None:
    """Make fonts installed after matplotlib built its font cache known to it (its cache file is
    not refreshed when a system font is added, e.g. after `apt-get install fonts-noto-cjk`)."""
    known = {entry.fname for entry in font_manager.fontManager.ttflist}
    for font_file in font_manager.findSystemFonts():
        if font_file not in known:
            with contextlib.suppress(Exception):   # a file FreeType cannot read is skipped
                font_manager.fontManager.addfont(font_file)


def _default_font_file() -> str:
    return font_manager.findfont(font_manager.FontProperties(family=matplotlib.rcParams["font.family"]))


def font_families(texts: Iterable[str]) -> tuple[list[str], str]:
    """(`font.family` for labels made of `texts`, the characters no installed font draws).

    The current family comes first; for the characters it lacks, installed fonts are added
    greedily, the one drawing most of those still missing first (ties: by name, so that a
    machine always picks the same)."""
    default = list(matplotlib.rcParams["font.family"])
    wanted = {ord(c) for text in texts for c in text if c.isprintable() and not c.isspace()}
    missing = wanted - _characters(_default_font_file())
    families = default.copy()
    if missing:
        _register_system_fonts()
    candidates = sorted({(entry.name, entry.fname) for entry in font_manager.fontManager.ttflist
                         if not entry.name.startswith(PLACEHOLDER_FONT)})
    while missing:
        best = max(candidates, key=lambda font: len(missing & _characters(font[1])), default=None)
        drawn = missing & _characters(best[1]) if best else set()
        if not drawn:
            break
        families.append(best[0])
        missing -= drawn
        candidates = [font for font in candidates if font[0] != best[0]]
    return families, "".join(sorted(map(chr, missing)))


def use_label_fonts(texts: Iterable[str]) -> None:
    """Set `font.family` for labels made of `texts` (font_families), for the rest of the session
    (the results notebook); characters no installed font has are said once on stderr, and
    matplotlib's warning per such glyph is silenced (it would repeat for every figure)."""
    families, missing = font_families(texts)
    if missing:
        print(f"dontstop: warning: no installed font draws {missing!r} (in the figures' labels): they "
              f"show as boxes; {install_hint(missing)}", file=sys.stderr)
    matplotlib.rcParams["font.family"] = families
    matplotlib.rcParams["text.parse_math"] = False   # labels are names: a `$` in one was a mathtext traceback
    for character in missing:
        warnings.filterwarnings("ignore", message=rf"Glyph {ord(character)} ", category=UserWarning)


def install_hint(missing: str) -> str:
    """What to install for `missing`: the Noto packages of Debian that draw them."""
    cjk = [c for c in missing if unicodedata.name(c, "").startswith(CJK_NAMES)]
    packages = ["fonts-noto-cjk"] * bool(cjk) + ["fonts-noto-core"] * (len(cjk) < len(missing))
    return HINT.format(packages=" ".join(packages))


@contextlib.contextmanager
def label_fonts(texts: Iterable[str]) -> Iterator[None]:
    """use_label_fonts for the figures drawn inside only: settings and warning filters are restored after."""
    with plt.rc_context(), warnings.catch_warnings():
        use_label_fonts(texts)
        yield
