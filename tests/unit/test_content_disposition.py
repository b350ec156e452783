"""The ``Content-Disposition`` of download URLs: a safe ASCII fallback and an RFC 8187 name."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from filepipe.storage import content_disposition

_HEADER = re.compile(
    r"attachment; filename=\"(?P<fallback>[A-Za-z0-9 ._()+-]+)\";"
    r" filename\*=UTF-8''(?P<encoded>[A-Za-z0-9!#$&+.^_`|~%-]+)"
)


def parts(filename: str) -> tuple[str, str]:
    header = content_disposition(filename)
    match = _HEADER.fullmatch(header)
    assert match is not None, header
    return match["fallback"], unquote(match["encoded"], errors="strict")


@pytest.mark.parametrize(
    ("filename", "fallback", "name"),
    [
        ("report.pdf", "report.pdf", "report.pdf"),
        ('say "hi".txt', "say _hi_.txt", 'say "hi".txt'),
        ("résumé.pdf", "r_sum_.pdf", "résumé.pdf"),
        ("日本語.csv", "___.csv", "日本語.csv"),
        ("\ufb01nal\uff0epdf", "final.pdf", "final.pdf"),  # NFKC: ligature and fullwidth full stop
        ("a\\b;c%41.txt", "a_b_c_41.txt", "a_b;c%41.txt"),
        ("x\u2215y\u2044z.txt", "x_y_z.txt", "x_y_z.txt"),  # look-alike slashes
        ("\u202etxt.exe", "_txt.exe", "_txt.exe"),  # a bidi override
        ("..hidden", "hidden", "..hidden"),
        ("", "download", "download"),
    ],
)
def test_the_fallback_is_safe_ascii_and_the_utf8_name_is_the_nfkc_name(
    filename: str, fallback: str, name: str
) -> None:
    assert parts(filename) == (fallback, name)


def test_no_character_ends_the_quoted_string_or_the_header() -> None:
    everything = "".join(map(chr, range(1, 0x3000)))
    header = content_disposition(everything)
    assert header.isascii()
    assert all(ch >= " " and ch != "\x7f" for ch in header)
    fallback, _ = parts(everything)
    assert len(fallback) <= 150
