"""Bytes to text: the declared charset when there is one, detection when there is not.

Report pages come from old CMSs in windows-1252 as often as in UTF-8, and a wrong
guess turns curly quotes and accents into mojibake, so every declared source is
tried before statistics.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from .errors import ParseError

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "application/xml", "text/xml"})
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# Formats that sometimes arrive labelled text/html (or unlabelled) but are not pages.
_BINARY_MAGIC = ((b"%PDF", "application/pdf"), (b"PK\x03\x04", "application/zip"),
                 (b"\x89PNG", "image/png"), (b"GIF8", "image/gif"), (b"\xff\xd8\xff", "image/jpeg"),
                 (b"\xd0\xcf\x11\xe0", "application/msword"))
_CHARSET_PARAM = re.compile(rb"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I
)
# WHATWG: browsers read latin-1 and ascii labels as windows-1252, and real pages rely on it
# for their curly quotes in 0x80-0x9F.
_ALIASES = {"iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "l1": "cp1252",
            "us-ascii": "cp1252", "ascii": "cp1252", "iso8859-1": "cp1252"}
_META_SCAN_BYTES = 4096
# Text pages hold no C0 control characters beyond tab, newline, form feed and carriage
# return; binary formats are full of them, whatever codec they are decoded with (and a
# failed decoding leaves U+FFFD). Share of the first 64 KiB that makes a body binary:
_BINARY_CHARS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")
_BINARY_SAMPLE = 65536
_MAX_BINARY_SHARE = 0.02


def media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def _codec(label: bytes | str) -> str | None:
    name = label.decode("ascii", "ignore") if isinstance(label, bytes) else label
    name = _ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _try(body: bytes, label: bytes | str | None) -> str | None:
    codec = _codec(label) if label else None
    if codec is None:
        return None
    # UTF-16/32 text of an HTML page is full of NUL bytes; without them the label is wrong
    # (browsers likewise ignore a UTF-16 <meta> in a page they could read as ASCII).
    if codec.startswith(("utf-16", "utf-32")) and b"\x00" not in body[:1024]:
        return None
    try:
        return body.decode(codec)
    # UnicodeError too: labels such as "undefined" name Python codecs that refuse every input,
    # and LookupError for bytes-to-bytes codecs ("base64", "rot13") that decode no text.
    except (UnicodeError, LookupError):
        return None


def check_media(body: bytes, content_type: str | None) -> None:
    """Raise ParseError for anything that is not an HTML page."""
    mime = media_type(content_type)
    if mime is not None and mime not in HTML_TYPES:
        raise ParseError(f"not HTML: {mime}", "not_html")
    if not body.strip():
        raise ParseError("empty page", "empty_body")
    head = body.lstrip()[:8]
    for magic, kind in _BINARY_MAGIC:
        if head.startswith(magic):
            raise ParseError(f"not HTML: {kind}", "not_html")


def check_text(text: str, content_type: str | None) -> None:
    """Raise ParseError when decoded "text" is really binary bytes (defect 14 of issue 9)."""
    sample = text[:_BINARY_SAMPLE]
    if sample and len(_BINARY_CHARS.findall(sample)) > _MAX_BINARY_SHARE * len(sample):
        raise ParseError(f"binary content served as {media_type(content_type) or 'an HTML page'}",
                         "binary_content")


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Decode page bytes: BOM, then HTTP charset, then <meta>, then detection.

    A BOM goes first (as in browsers) because it cannot be wrong, whereas HTTP
    headers on mirrors often are.
    """
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(codec, "replace")
    if content_type:
        found = _CHARSET_PARAM.search(content_type.encode("latin-1", "replace"))
        if found and (text := _try(body, found.group(1))) is not None:
            return text
    found = _META_CHARSET.search(body[:_META_SCAN_BYTES])
    if found and (text := _try(body, found.group(1))) is not None:
        return text
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(body[:65536]).best()
    if best is not None and (text := _try(body, best.encoding)) is not None:
        return text
    return body.decode("cp1252", "replace")
