"""Report text: strip page furniture, find the block holding the narrative, split it.

Furniture is recognised by element semantics (nav, footer, ARIA roles) and by the
words sites use to name it; the narrative block is then the smallest element that
still holds most of the paragraph text, which works on layouts never seen before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from .labels import remove
from .tree import norm, tag_of, text_of

_FURNITURE_TAGS = frozenset({"nav", "header", "footer", "aside", "form", "button", "select",
                             "input", "textarea", "menu", "dialog"})
_FURNITURE_ROLES = frozenset({"navigation", "search", "banner", "contentinfo", "complementary",
                              "menu", "menubar", "dialog", "alert"})
# Words sites use in class and id names for furniture. Names are split into tokens on
# punctuation and camelCase ("skipLinks" -> skip, links); a token counts when it is one
# of these words or starts with one ("printlinks", "sidebar2"), or ends in nav/menu.
_FURNITURE_WORDS = frozenset({
    "nav", "navbar", "navigation", "menu", "breadcrumb", "breadcrumbs", "sidebar", "side",
    "footer", "masthead", "share", "sharing", "social", "print", "printer", "email", "mail",
    "related", "search", "searchbox", "skip", "disclaimer", "cookie", "cookies", "comment",
    "comments", "promo", "advert", "ads", "toolbar", "pagination", "pager", "tools", "widget",
    "banner", "subscribe", "newsletter", "login", "popup", "modal", "byline", "meta", "date", "dateline",
})
_FURNITURE_PREFIXES = ("print", "skip", "social", "related", "breadcrumb", "sidebar",
                       "footer", "search", "disclaimer", "cookie", "newsletter")
_FURNITURE_SUFFIXES = ("nav", "menu")
_TOKEN = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCK_TAGS = frozenset({"p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dd",
                         "dt", "blockquote", "pre", "table", "tr", "td", "th", "tbody", "thead",
                         "figure", "figcaption", "center", "body", "address"}) | _HEADING_TAGS
_PARAGRAPH_TAGS = ("p", "li", "blockquote", "pre", "dd", "td")
_BOLD_TAGS = frozenset({"strong", "b"})
_MAX_BOLD_HEADING = 120
# Share of all paragraph text the chosen container must hold.
_CONTAINER_SHARE = 0.75
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True, slots=True)
class Block:
    text: str
    heading: bool


def _is_furniture(el: etree._Element) -> bool:
    tag = tag_of(el)
    if tag in _FURNITURE_TAGS:
        return True
    if (el.get("role") or "").lower() in _FURNITURE_ROLES or el.get("hidden") is not None:
        return True
    if "display:none" in (el.get("style") or "").replace(" ", "").lower():
        return True
    names = f"{el.get('class') or ''} {el.get('id') or ''}"
    return any(_furniture_token(t.lower()) for t in _TOKEN.findall(names))


def _furniture_token(token: str) -> bool:
    return (token in _FURNITURE_WORDS or token.startswith(_FURNITURE_PREFIXES)
            or token.endswith(_FURNITURE_SUFFIXES))


def strip_furniture(root: etree._Element) -> None:
    """Remove navigation, search boxes, share/print links, sidebars and footers in place."""
    doomed = []
    walker = etree.iterwalk(root, events=("start",))
    for _event, el in walker:
        if el is not root and tag_of(el) not in ("html", "body") and _is_furniture(el):
            doomed.append(el)
            walker.skip_subtree()
    remove(doomed)


def main_container(root: etree._Element) -> etree._Element:
    """The smallest element holding most of the page's paragraph text."""
    weight: dict[etree._Element, int] = {}
    total = 0
    for para in root.iter(*_PARAGRAPH_TAGS):
        size = len(text_of(para))
        if size < 25:
            continue
        total += size
        for ancestor in para.iterancestors():
            weight[ancestor] = weight.get(ancestor, 0) + size
    if not total:
        body = root.find("body")
        return body if body is not None else root
    best, best_depth = root, -1
    for el, size in weight.items():
        if size >= total * _CONTAINER_SHARE:
            depth = sum(1 for _ in el.iterancestors())
            if depth > best_depth:
                best, best_depth = el, depth
    return best


def _bold_heading(el: etree._Element) -> str | None:
    """A paragraph that is nothing but one short bold run reads as a heading."""
    if len(el) != 1 or norm(el.text) or tag_of(el[0]) not in _BOLD_TAGS or norm(el[0].tail):
        return None
    text = text_of(el[0])
    if not text or len(text) > _MAX_BOLD_HEADING or text.endswith("."):
        return None
    return text


def blocks(container: etree._Element) -> list[Block]:
    """Headings and paragraphs of the container in reading order."""
    out: list[Block] = []
    buffer: list[str] = []

    def flush() -> None:
        joined = "".join(buffer)
        buffer.clear()
        for chunk in _PARAGRAPH_BREAK.split(joined):
            if text := norm(chunk):
                out.append(Block(text, heading=False))

    walker = etree.iterwalk(container, events=("start", "end"))
    for event, el in walker:
        tag = tag_of(el)
        if event == "start":
            if tag in _HEADING_TAGS or (tag in ("p", "div") and (bold := _bold_heading(el))):
                flush()
                text = text_of(el) if tag in _HEADING_TAGS else bold
                if text := norm(text).rstrip(":").strip():
                    out.append(Block(text, heading=True))
                walker.skip_subtree()
                continue
            if tag in _BLOCK_TAGS:
                flush()
            elif tag == "br":
                buffer.append("\n\n" if _double_break(el) else " ")
            buffer.append(el.text or "")
        else:
            if tag in _BLOCK_TAGS:
                flush()
            if el is not container:
                buffer.append(el.tail or "")
    flush()
    return out


def _double_break(br: etree._Element) -> bool:
    """<br><br> separates paragraphs in old CMS output; a single <br> is just a line end."""
    nxt = br.getnext()
    prev = br.getprevious()
    return (nxt is not None and tag_of(nxt) == "br" and not norm(br.tail)) or (
        prev is not None and tag_of(prev) == "br" and not norm(prev.tail))
