"""Decoding: declared charsets first, detection last, no mojibake."""

from __future__ import annotations

import codecs

import pytest

from workers.parse.decode import decode_html

TEXT = "<p>Thailand\u2019s \u201cdebt-bonded\u201d workers \u2014 C\u00f4te d\u2019Ivoire r\u00e9gime</p>"


def test_http_charset_wins_over_meta() -> None:
    body = ("<meta charset='utf-8'>" + TEXT).encode("cp1252")
    assert decode_html(body, "text/html; charset=windows-1252").endswith(TEXT)


def test_meta_charset_when_http_has_none() -> None:
    body = ('<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
            + TEXT).encode("cp1252")
    assert decode_html(body, "text/html").endswith(TEXT)


def test_latin1_label_is_read_as_windows_1252_like_browsers() -> None:
    body = ("<meta charset='iso-8859-1'>" + TEXT).encode("cp1252")
    assert TEXT in decode_html(body, None)


def test_bom_beats_a_wrong_http_charset() -> None:
    body = codecs.BOM_UTF8 + TEXT.encode("utf-8")
    assert decode_html(body, "text/html; charset=iso-8859-1") == TEXT


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_undeclared_charset_is_detected(encoding: str) -> None:
    body = ("<html><body>" + TEXT * 3 + "</body></html>").encode(encoding)
    assert TEXT in decode_html(body, None)


def test_unknown_or_undecodable_declared_charset_falls_through() -> None:
    assert TEXT in decode_html(TEXT.encode("utf-8"), "text/html; charset=x-no-such-charset")
    assert TEXT in decode_html(TEXT.encode("utf-8"), "text/html; charset=utf-16")


def test_unknown_meta_charset_label_falls_back_instead_of_crashing() -> None:
    """`<meta charset="undefined">` names Python's 'undefined' codec, which raises on use."""
    page = ('<html><head><meta charset="undefined"></head><body><p>' + TEXT + "</p></body></html>")
    for label in ("undefined", "rot13", "base64", "no-such-charset"):
        body = page.replace("undefined", label).encode("utf-8")
        assert TEXT in decode_html(body, None)
        assert TEXT in decode_html(body, f"text/html; charset={label}")
    # Not UTF-8 either: detection still decodes it rather than the label crashing it.
    assert "C\u00f4te d\u2019Ivoire" in decode_html(page.encode("cp1252"), None)
