"""The command line: sizes, metadata pairs, safe download names."""

from __future__ import annotations

import argparse

import pytest

from filepipe_client import safe_filename
from filepipe_client.cli._parser import build_parser, byte_size, metadata_pair


@pytest.mark.parametrize(
    ("text", "size"),
    [("5242880", 5242880), ("5MiB", 5 * 1024**2), ("16 M", 16 * 1024**2), ("1g", 1024**3)],
)
def test_sizes(text: str, size: int) -> None:
    assert byte_size(text) == size


@pytest.mark.parametrize("text", ["", "5 TB", "-1", "MiB"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        byte_size(text)


def test_metadata_pairs_split_at_the_first_equals_sign() -> None:
    assert metadata_pair("owner.team=a=b") == ("owner.team", "a=b")
    with pytest.raises(argparse.ArgumentTypeError):
        metadata_pair("no-value")


def test_connection_flags_work_before_and_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--url", "http://a", "status", "X"])
    after = parser.parse_args(["status", "X", "--url", "http://b", "--api-key", "k"])
    assert (before.url, before.api_key) == ("http://a", None)
    assert (after.url, after.api_key) == ("http://b", "k")


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("..", "download"),
        (".hidden", "hidden"),
        ("a\x00b\nc.txt", "a_b_c.txt"),
        ("C:\\x\\y.pdf", "C_x_y.pdf"),
        ("\uff46\uff55\uff4c\uff4c.pdf", "full.pdf"),  # fullwidth letters
    ],
)
def test_download_names_are_made_safe(name: str, safe: str) -> None:
    assert safe_filename(name) == safe
