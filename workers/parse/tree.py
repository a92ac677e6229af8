"""One lxml parse per page, plus the small text helpers every site parser shares.

lxml.html is used directly rather than through BeautifulSoup: it builds the tree
several times faster, and the extractors only need iteration and sibling access.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from lxml import etree, html

from .errors import ParseError

_PARSER = html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True,
                          no_network=True, recover=True)
_WS = re.compile(r"\s+")
# Control characters are never visible text, and lxml refuses them when the tree is edited.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
# Never part of what a reader sees.
INVISIBLE_TAGS = ("script", "style", "noscript", "template", "svg", "iframe", "object", "embed")


def norm(text: str | None) -> str:
    return _WS.sub(" ", text).strip() if text else ""


def text_of(el: etree._Element | None) -> str:
    """Visible text of an element with whitespace collapsed."""
    if el is None:
        return ""
    return norm("".join(t for t in el.itertext() if isinstance(t, str)))


def tag_of(el: object) -> str:
    # Comments and entities have a callable tag; only real elements have a string one.
    tag = getattr(el, "tag", None)
    return tag.lower() if isinstance(tag, str) else ""


@dataclass
class Page:
    """A parsed page and what every parser reads from it once."""

    url: str
    root: etree._Element
    meta: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    def first_meta(self, *names: str) -> str | None:
        for name in names:
            if value := self.meta.get(name):
                return value
        return None


def parse_tree(text: str, url: str) -> Page:
    """Build the tree (from UTF-8, so lxml never sees a conflicting encoding declaration)."""
    data = _CONTROL.sub("", text).encode("utf-8", "replace")
    try:
        root = html.document_fromstring(data, parser=_PARSER)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as exc:
        raise ParseError("no HTML content") from exc
    if root is None or not isinstance(root.tag, str):
        raise ParseError("no HTML content")
    etree.strip_elements(root, *INVISIBLE_TAGS, with_tail=False)
    page = Page(url=url, root=root)
    for el in root.iter("meta", "link"):
        if el.tag == "meta":
            key = (el.get("property") or el.get("name") or el.get("http-equiv") or "").strip().lower()
            value = norm(el.get("content"))
            if key and value and key not in page.meta:
                page.meta[key] = value
        else:
            href = (el.get("href") or "").strip()
            for rel in (el.get("rel") or "").lower().split():
                if href and rel not in page.links:
                    page.links[rel] = href
    return page
