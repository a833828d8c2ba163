"""Where words begin and end, in any script: the one rule shared by the kNN bag-of-words embedder
(select/embed.py) and the vocabulary overlap (analysis/vocab.py).

Scripts written without spaces between words (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar)
give no word boundaries a regex can see: a Chinese sentence is one run of letters. There every
letter is a token of its own, as BERT's tokenizer splits CJK characters; in every other script a
word is a run of letters, combining marks included (a Devanagari vowel sign or an NFD accent is
not a word break: "मौसम", "café"). Both compare words in one form (`word_form`): NFC, full-width
ASCII as ASCII, lowercased, so a word stored decomposed (macOS, Hangul as jamo) or typed full-width
is the same word; and without what is not part of a word's spelling: Arabic and Hebrew vowel
points, tatweel, joiners, soft hyphens, presentation forms ("كَتَبَ", "كـتـب", "ﻛﺘﺐ" are "كتب"),
and with Persian and Urdu's own forms of yeh, kaf and heh as Arabic's ("کتاب" typed on a Persian
keyboard is "كتاب" typed on an Arabic one).

    letter_classes().unspaced      # a regex character-class body: letters of unspaced scripts
    letter_classes().spaced        # letters of every other script
    letter_classes().marks         # combining marks outside the unspaced scripts
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

# Blocks of scripts written without spaces between words: Thai and Lao, Myanmar, Khmer, kana,
# CJK ideographs (and their extensions and compatibility forms), halfwidth katakana, and the
# letters of the CJK punctuation block (the iteration marks "々" of "人々", "〻", the vertical kana
# repeat marks, "〆" of "〆切"): as letters of other scripts they were a run of one, no word at all.
UNSPACED_BLOCKS = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x3005, 0x3006),
                   (0x3031, 0x3035), (0x303B, 0x303C), (0x3040, 0x30FF),
                   (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xFF66, 0xFF9F),
                   (0x20000, 0x3FFFF))
LAST_LETTER = 0x3FFFF   # no script has letters beyond the CJK extensions


@dataclass(frozen=True)
class LetterClasses:
    unspaced: str   # each a regex character-class body, to go inside [...]
    spaced: str
    marks: str


@functools.cache
def letter_classes() -> LetterClasses:
    """The three classes (Unicode categories L and M), built from unicodedata once per process."""
    unspaced_codes = bytearray(LAST_LETTER + 2)
    for low, high in UNSPACED_BLOCKS:
        unspaced_codes[low:high + 1] = b"\x01" * (high + 1 - low)
    classes: dict[str, list[str]] = {"unspaced": [], "spaced": [], "marks": []}
    runs: dict[str, int | None] = dict.fromkeys(classes)
    for code in range(LAST_LETTER + 2):
        category = unicodedata.category(chr(code))[0] if code <= LAST_LETTER else ""
        unspaced = unspaced_codes[code]
        kind = ("unspaced" if unspaced else "spaced") if category == "L" else (
            "marks" if category == "M" and not unspaced else None)
        for name, start in runs.items():   # close the runs this code point does not continue
            if start is not None and name != kind:
                classes[name].append(_range(start, code - 1))
                runs[name] = None
        if kind is not None and runs[kind] is None:
            runs[kind] = code
    return LetterClasses(*("".join(classes[name]) for name in ("unspaced", "spaced", "marks")))


def _range(first: int, last: int) -> str:
    return re.escape(chr(first)) + (f"-{re.escape(chr(last))}" if last > first else "")


# Full-width ASCII (U+FF01-U+FF5E: "ＧＰＴ", as Chinese and Japanese input methods type it) -> ASCII.
FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
# Compatibility forms of letters, read as the letters (NFKC of these runs only, so that no other
# text changes): Arabic presentation forms (U+FB50-U+FDFF, U+FE70-U+FEFF: shaped glyphs, as text
# copied out of a PDF holds them, "ﻛﺘﺐ" for "كتب"), Hebrew ones (U+FB1D-U+FB4F) and halfwidth
# katakana (U+FF61-U+FF9F: "ｶﾞ" is "ガ", its voicing mark a character of its own).
COMPATIBILITY_RUN = re.compile("[\ufb1d-\ufdff\ufe70-\ufefe\uff61-\uff9f]+")
# Optional vowel points of the abjads: Arabic harakat, shadda, tanwin and Quranic marks, Hebrew
# niqqud and cantillation (the combining marks, Unicode category Mn, of the Arabic and Hebrew
# blocks). Most Arabic and Hebrew text is written without them, a vowelled source (a school text,
# scripture) with all or some: "كَتَبَ" and "كتب", "שָׁלוֹם" and "שלום" are one word each.
ABJAD_BLOCKS = ((0x0591, 0x05C7), (0x0610, 0x06FF), (0x0750, 0x077F), (0x0870, 0x08FF))
# Characters that draw nothing of a word's spelling: Arabic tatweel (U+0640, the kashida that
# stretches a line: "كـتـب" is "كتب"), the zero-width non-joiner and joiner (U+200C/U+200D, inside a
# Persian or Indic word, which they split in two: "می‌خواهم"), the soft hyphen (U+00AD, a break
# point inside a word: "inter\u00adnational" was two words), and the direction marks that text
# copied out of a right-to-left editor carries (U+200E/U+200F, U+061C, embeddings and isolates).
INVISIBLE_IN_WORDS = ("\u0640\u200c\u200d\u00ad\u200e\u200f\u061c"
                      "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# Letters Persian and Urdu write in their own forms where Arabic has one letter, and which of the
# two a text holds depends on the keyboard it was typed on (a Persian corpus mixes them): Farsi yeh
# "ی" and Arabic yeh "ي", keheh "ک" and kaf "ك", Urdu's heh goal "ہ" and Arabic's heh "ه", Urdu's teh
# marbuta goal "ۃ" and "ة"; each is read as the Arabic letter ("کتاب" typed on a Persian keyboard is
# "كتاب" typed on an Arabic one). Kurdish (Sorani) ae "ە" is read as heh too: older Sorani spelling
# writes that vowel as heh and a zero-width non-joiner, which word_form drops. "ۀ" and "ۂ" are heh
# with a hamza above, which word_form drops as it drops "هٔ"'s. Alef maksura "ى" stays a letter of
# its own (Arabic's "على" is not "علي"), as do Urdu's "ھ" (aspiration: "پھر" is not "پہر") and "ے",
# and Persian's digits are not letters.
KEYBOARD_LETTERS = {"\u06cc": "\u064a", "\u06a9": "\u0643", "\u06d5": "\u0647", "\u06c1": "\u0647",
                    "\u06c0": "\u0647", "\u06c2": "\u0647", "\u06c3": "\u0629"}


@functools.cache
def _unpointed_table() -> dict[int, None]:
    """str.translate's table: vowel points and characters that draw nothing of a word, out."""
    points = {code: None for low, high in ABJAD_BLOCKS for code in range(low, high + 1)
              if unicodedata.category(chr(code)) == "Mn"}
    return {**points, **dict.fromkeys(map(ord, INVISIBLE_IN_WORDS))}


@functools.cache
def _form_table() -> dict[int, int | None]:
    """str.translate's table: full-width ASCII to ASCII, Persian and Urdu letters as Arabic's
    (KEYBOARD_LETTERS), vowel points and invisible characters out."""
    return {**FULL_WIDTH, **{ord(letter): ord(arabic) for letter, arabic in KEYBOARD_LETTERS.items()},
            **_unpointed_table()}


def unpointed(text: str) -> str:
    """The text (NFC) without Arabic and Hebrew vowel points or what draws nothing of a word
    (INVISIBLE_IN_WORDS: tatweel, joiners, soft hyphens, direction marks): "سِيَاسَة" and "سياسـة"
    are "سياسة"."""
    return unicodedata.normalize("NFC", text).translate(_unpointed_table())


def word_form(text: str) -> str:
    """The text in the one form its words are compared in: NFC ("café" precomposed, whether it was
    stored so or with a combining accent), compatibility forms of letters as the letters, full-width
    ASCII as ASCII, Persian and Urdu's yeh, kaf and heh as Arabic's (KEYBOARD_LETTERS: "ی" is "ي",
    "ک" is "ك"), without vowel points of Arabic and Hebrew or characters that draw nothing of a
    word (INVISIBLE_IN_WORDS), lowercased."""
    text = unicodedata.normalize("NFC", text)
    text = COMPATIBILITY_RUN.sub(lambda run: unicodedata.normalize("NFKC", run.group()), text)
    return text.translate(_form_table()).lower()


@functools.cache
def bow_token_pattern() -> str:
    """scikit-learn's default token pattern (`\\b\\w\\w+\\b`: a run of 2+ letters, digits or
    underscores) made to see words in every script: a letter of an unspaced script is a token of
    its own and never part of a run, and combining marks continue a run. On text without
    either (English) it finds exactly the tokens of the default pattern."""
    classes = letter_classes()
    word = rf"[^\W{classes.unspaced}]"   # \w, less the letters of unspaced scripts
    return rf"[{classes.unspaced}]|{word}(?:{word}|[{classes.marks}])+"


@functools.cache
def _split_by_sklearn() -> re.Pattern:
    """A letter of an unspaced script, or a letter and the combining mark after it: where
    scikit-learn's word pattern, a run of \\w, reads a whole sentence as one word or cuts a word at
    its vowel sign or decomposed accent. A mark after no letter (an emoji's variation selector)
    is in no word."""
    classes = letter_classes()
    return re.compile(f"[{classes.unspaced}]|[{classes.spaced}][{classes.marks}]")


def first_unspaced_letter(texts: list[str]) -> str | None:
    """The first letter of `texts` that scikit-learn's words cannot read (a Han, kana or Thai
    letter; a letter with its combining mark, as "e\\u0301"), or None: text whose words its
    pattern finds."""
    pattern = _split_by_sklearn()
    return next((found.group() for text in texts if (found := pattern.search(text))), None)
