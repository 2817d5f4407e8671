"""Caseless patterns find what their ``re.I`` form finds, on ASCII text and on any other."""

from __future__ import annotations

import re

import pytest

from aetherius.diagnosis.rules._caseless import Caseless
from aetherius.diagnosis.rules.images import classify_pull

_PATTERN = r"code = notfound|manifest for \S+ not found|tls handshake timeout|401"

TEXTS = [
    'Failed to pull image "r.example.com/a:1": rpc error: code = NotFound desc = not found',
    "MANIFEST FOR r.example.com/a:1 NOT FOUND",
    "manifest for  not found",  # \S+ needs a word between
    "net/http: TLS Handshake Timeout",
    "HTTP 401 Unauthorized",
    "Back-off pulling image",
    "",
    "CODE = NOTFOUND with ünïcödé around it",
    "code = notfound",
    "TLS handshake \u212aimeout",  # KELVIN SIGN: neither form matches it for "t"
    "manifest for r\u0130 not found",  # LATIN CAPITAL I WITH DOT: non-ASCII, still found
    "code = notfo\u212and",  # KELVIN SIGN is no "u"
]


@pytest.mark.parametrize("text", TEXTS)
def test_found_as_re_i_finds(text: str) -> None:
    assert Caseless(_PATTERN).found(text) == bool(re.compile(_PATTERN, re.I).search(text))


def test_non_ascii_text_uses_case_folding_of_re_i() -> None:
    # "k" matches KELVIN SIGN under re.I; the lower case of ASCII text has none, so only the
    # re.I path can see it, and it does.
    assert Caseless(r"kubelet").found("\u212aUBELET said so")
    assert not Caseless(r"kubelet").found("cubelet")


@pytest.mark.parametrize("pattern", [r"Not Found", r"[A-Z]+ missing", r"\x41bc", r"\N{LATIN SMALL LETTER A}"])
def test_pattern_must_be_lower_case(pattern: str) -> None:
    with pytest.raises(ValueError, match="lower case"):
        Caseless(pattern)


@pytest.mark.parametrize(
    ("message", "root"),
    [
        (
            'rpc error: code = NotFound desc = failed to pull and unpack image "x:1": not found',
            "ImageNotFound",
        ),
        (
            "pull access denied for x, repository does not exist or may require 'docker login'",
            "RegistryAuthFailure",
        ),
        ("failed to fetch anonymous token: 401 Unauthorized", "RegistryAuthFailure"),
        ("dial tcp: lookup registry.example.com: no such host", "DependencyUnavailable"),
        ("net/http: TLS HANDSHAKE TIMEOUT", "DependencyUnavailable"),
        ("MANIFEST UNKNOWN: manifest unknown", "ImageNotFound"),
        ('Back-off pulling image "x:1"', "Unknown"),
        ("Manifest for r\u0130/x:1 NOT FOUND", "ImageNotFound"),
    ],
)
def test_classify_pull(message: str, root: str) -> None:
    assert classify_pull(message) == root
