"""The names users give their files: NFKC normalisation and the characters never allowed in one.

A name is stored NFKC-normalised (compatibility forms folded: fullwidth letters, ligatures, the
fullwidth and small solidus forms become ``/`` and ``\\``). Refused in a name, after
normalisation: path separators and the characters that look like them, and invisible ones
(controls, format characters, lone surrogates, line and paragraph separators).
"""

from __future__ import annotations

import unicodedata

SEPARATORS = frozenset(
    "/\\"
    "\u0337\u0338"  # combining short and long solidus overlays
    "\u1735"  # Philippine single punctuation
    "\u2044\u2215\u2216"  # fraction slash, division slash, set minus
    "\u2571\u2572"  # box drawings light diagonals
    "\u27cb\u27cd"  # mathematical rising and falling diagonals
    "\u29f5\u29f8\u29f9"  # reverse solidus operator, big solidus, big reverse solidus
    "\u2afb\u2afd"  # triple solidus binary relation, double solidus operator
)
"""Path separators and the characters that look like them."""
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def normalize(name: str) -> str:
    return unicodedata.normalize("NFKC", name)


def is_separator(char: str) -> bool:
    """Whether a (normalised) character is a path separator or looks like one."""
    return char in SEPARATORS


def is_invisible(char: str) -> bool:
    """Whether a (normalised) character is a control or invisible formatting character."""
    return unicodedata.category(char) in INVISIBLE_CATEGORIES


def refused(char: str) -> bool:
    """Whether one character, once NFKC-normalised, makes any name holding it invalid."""
    return any(is_separator(c) or is_invisible(c) for c in normalize(char))
