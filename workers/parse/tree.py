"""One BeautifulSoup tree per page (lxml tree builder), plus the text helpers every parser shares.

The tree is built once and every extractor reads that same soup, the way Python
scrapers are written everywhere: `select`, `find`, `get_text`. One walk at build
time indexes the elements by tag name, so the extractors look elements up instead
of each walking the whole tree again (BeautifulSoup walks are Python loops).

Tags must never go into sets or dict keys: bs4 hashes a Tag by serialising it; and
`Tag.decomposed` searches the subtree of a live tag, so removals are tracked here.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bs4 import (BeautifulSoup, CData, MarkupResemblesLocatorWarning, NavigableString,
                 ParserRejectedMarkup, Tag, XMLParsedAsHTMLWarning)

from .errors import ParseError


# Control characters are never visible text.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
# Never part of what a reader sees.
INVISIBLE_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object",
                            "embed"})
# Text nodes a reader sees (comments, doctypes and processing instructions are strings too).
TEXT_TYPES = (NavigableString, CData)


def norm(text: str | None) -> str:
    # str.split() splits on exactly the characters \s matches, without the regex engine.
    return " ".join(text.split()) if text else ""


def text_of(el: Tag | None) -> str:
    """Visible text of an element with whitespace collapsed."""
    if el is None:
        return ""
    return norm(el.get_text())


def element_siblings(el: Tag, forward: bool = True) -> Iterator[Tag]:
    """Element siblings in one direction, stepping over the text between them."""
    for sibling in (el.next_siblings if forward else el.previous_siblings):
        if isinstance(sibling, Tag):
            yield sibling
        elif type(sibling) in TEXT_TYPES and sibling.strip():
            return


def spaced_text(el: Tag | None) -> str:
    """Text with a space between elements: for short lines whose parts render apart
    (<span>Name</span><span>Tagline</span>, Report<br>June 30, 2016)."""
    return norm(el.get_text(" ")) if el is not None else ""


def next_element(el: Tag) -> Tag | None:
    return next(element_siblings(el), None)


def previous_element(el: Tag) -> Tag | None:
    return next(element_siblings(el, forward=False), None)


@dataclass
class Page:
    """A parsed page and what every parser reads from it once."""

    url: str
    soup: BeautifulSoup
    root: Tag
    # The text the soup was built from, for extractors that read the page with their own parser.
    html: str = ""
    # Every element in document order, as built; removed ones are skipped by `tags`.
    elements: list[Tag] = field(default_factory=list)
    removed: set[int] = field(default_factory=set)
    meta: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    # <link rel="alternate"> titles: feed titles carry the site's name on most CMSs.
    feed_titles: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    def tags(self, *names: str) -> Iterator[Tag]:
        """Elements with these tag names still in the page, in document order."""
        wanted = frozenset(names)
        return (el for el in self.elements if el.name in wanted and id(el) not in self.removed)

    def depths(self) -> dict[int, int]:
        """Depth of every element by id, in one pass (parents come before their children)."""
        depth: dict[int, int] = {}
        for el in self.elements:
            parent = el.parent
            depth[id(el)] = depth.get(id(parent), 0) + 1 if parent is not None else 0
        return depth

    def with_attr(self, attr: str, pattern: re.Pattern[str]) -> Iterator[Tag]:
        """Elements whose attribute (class, id, rel) matches, in document order.

        A plain loop over the index: a soupsieve select over the whole page costs more
        than building the soup.
        """
        return (el for el in self.elements
                if (value := el.attrs.get(attr)) and pattern.search(value) and id(el) not in self.removed)

    def strings(self, pattern: re.Pattern[str]) -> Iterator[NavigableString]:
        """Visible text nodes that match, in document order."""
        return (node for node in self.soup.descendants
                if type(node) in TEXT_TYPES and pattern.search(node))

    def alive(self, el: Tag) -> bool:
        return id(el) not in self.removed

    def remove(self, elements: Iterable[Tag]) -> None:
        """Take elements out of the page; the text around them stays where it was."""
        for el in elements:
            if id(el) in self.removed:
                continue
            self.removed.add(id(el))
            self.removed.update(id(d) for d in el.descendants if isinstance(d, Tag))
            el.extract()

    def first(self, *names: str) -> Tag | None:
        return next(self.tags(*names), None)

    def first_meta(self, *names: str) -> str | None:
        for name in names:
            if value := self.meta.get(name):
                return value
        return None


def parse_tree(text: str, url: str) -> Page:
    """Build the soup from text (decoded already, so no encoding declaration can interfere)."""
    try:
        with warnings.catch_warnings():
            # XHTML report pages are parsed as HTML on purpose, and a page whose text looks
            # like a URL is still a page: bs4's advice on both would only fill worker logs.
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            text = _CONTROL.sub("", text)
            soup = BeautifulSoup(text, "lxml", multi_valued_attributes=None)
    except (ParserRejectedMarkup, ValueError, LookupError) as exc:
        raise ParseError("no HTML content", "no_html_content") from exc
    page = Page(url=url, soup=soup, root=soup, html=text)
    invisible = []
    for el in soup.descendants:
        if not isinstance(el, Tag):
            continue
        page.elements.append(el)
        if el.name in INVISIBLE_TAGS:
            invisible.append(el)
        elif el.name == "meta":
            _read_meta(page, el)
        elif el.name == "link":
            _read_link(page, el)
    page.remove(invisible)
    root = next((el for el in soup.contents if isinstance(el, Tag)), None)
    if root is None:
        raise ParseError("no HTML content", "no_html_content")
    page.root = root
    return page


def _read_meta(page: Page, el: Tag) -> None:
    key = (el.get("property") or el.get("name") or el.get("http-equiv") or "").strip().lower()
    value = norm(el.get("content"))
    if key and value and key not in page.meta:
        page.meta[key] = value


def _read_link(page: Page, el: Tag) -> None:
    href = (el.get("href") or "").strip()
    rels = (el.get("rel") or "").lower().split()
    for rel in rels:
        if href and rel not in page.links:
            page.links[rel] = href
    if "alternate" in rels and (title := norm(el.get("title"))):
        page.feed_titles.append(title)
