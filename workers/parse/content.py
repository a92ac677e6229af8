"""Report text: strip page furniture, find the block holding the narrative, split it.

Furniture is recognised by element semantics (nav, footer, ARIA roles), by the
words sites use to name it, and by link density (a cell or paragraph that is mostly
links is navigation, whatever its markup: table layouts put the site menu in a
plain <td>). The narrative block is then the smallest element that still holds
most of the paragraph text, which works on layouts never seen before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bs4 import Comment, Tag

from .tree import TEXT_TYPES, Page, norm, text_of

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
# A paragraph is counted towards a container only with this much text of its own.
MIN_PARAGRAPH = 25
# Text next to the container joins it only if it reads as prose: paragraphs this long.
_MIN_PROSE = 80
# A paragraph whose text is mostly link text is a menu, a "read also" or a tag list.
_LINK_DENSITY = 0.6
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"[.!?)\u201d\"']$")


@dataclass(frozen=True, slots=True)
class Block:
    text: str
    heading: bool


def _is_furniture(el: Tag) -> bool:
    if el.name in _FURNITURE_TAGS:
        return True
    attrs = el.attrs
    if (attrs.get("role") or "").lower() in _FURNITURE_ROLES or "hidden" in attrs:
        return True
    if "display:none" in (attrs.get("style") or "").replace(" ", "").lower():
        return True
    names = f"{attrs.get('class') or ''} {attrs.get('id') or ''}"
    return any(_furniture_token(t.lower()) for t in _TOKEN.findall(names))


def _furniture_token(token: str) -> bool:
    return (token in _FURNITURE_WORDS or token.startswith(_FURNITURE_PREFIXES)
            or token.endswith(_FURNITURE_SUFFIXES))


def strip_furniture(page: Page) -> None:
    """Remove navigation, search boxes, share/print links, sidebars and footers in place."""
    for el in page.elements:
        # A removed element's subtree is marked removed too, so it is skipped here.
        if page.alive(el) and el.name not in ("html", "body") and _is_furniture(el):
            page.remove([el])


def main_container(page: Page) -> Tag:
    """The smallest element holding most of the page's paragraph text (link text left out)."""
    body = page.first("body") or page.root
    link_chars: dict[int, int] = {}
    for anchor in page.tags("a"):
        size = len(text_of(anchor))
        for ancestor in anchor.parents:
            link_chars[id(ancestor)] = link_chars.get(id(ancestor), 0) + size
    weight: dict[int, int] = {}
    elements: dict[int, Tag] = {}
    paragraphs: list[tuple[Tag, int]] = []
    total = 0
    for para in page.tags(*_PARAGRAPH_TAGS):
        size = len(text_of(para)) - link_chars.get(id(para), 0)
        if size < MIN_PARAGRAPH:
            continue
        total += size
        paragraphs.append((para, size))
        for ancestor in para.parents:
            weight[id(ancestor)] = weight.get(id(ancestor), 0) + size
            elements[id(ancestor)] = ancestor
    if not total:
        return body
    best, best_depth = body, -1
    depths = page.depths()
    for key, size in weight.items():
        if size >= total * _CONTAINER_SHARE and depths.get(key, 0) > best_depth:
            best, best_depth = elements[key], depths.get(key, 0)
    return _with_prose_beside(best, paragraphs, weight)


def _with_prose_beside(best: Tag, paragraphs: list[tuple[Tag, int]], weight: dict[int, int]) -> Tag:
    """Widen the container to its parent when what the parent adds is prose, not furniture.

    A lead or a definition often sits just outside the element that holds the bulk of
    the text (a list of entries, a results table); short lines and link lists never
    qualify, so menus and footers stay out.
    """
    while (parent := best.parent) is not None and parent.name not in ("body", "html", "[document]"):
        extra = weight.get(id(parent), 0) - weight.get(id(best), 0)
        if extra <= 0 or extra >= weight.get(id(best), 0):
            break
        added = [(p, size) for p, size in paragraphs
                 if any(a is parent for a in p.parents) and not any(a is best for a in p.parents)
                 and p is not best]
        if not all(size >= _MIN_PROSE and _SENTENCE_END.search(text_of(p)) for p, size in added):
            break
        best = parent
    return best


def _bold_heading(el: Tag) -> str | None:
    """A paragraph that is nothing but one short bold run reads as a heading."""
    children = [c for c in el.contents
                if not (isinstance(c, Comment) or (type(c) in TEXT_TYPES and not c.strip()))]
    if len(children) != 1 or not isinstance(children[0], Tag) or children[0].name not in _BOLD_TAGS:
        return None
    text = text_of(children[0])
    if not text or len(text) > _MAX_BOLD_HEADING or text.endswith("."):
        return None
    return text


def blocks(container: Tag) -> list[Block]:
    """Headings and paragraphs of the container in reading order."""
    out: list[Block] = []
    buffer: list[str] = []
    linked: list[str] = []

    def flush() -> None:
        joined = "".join(buffer)
        link_text = norm("".join(linked))
        buffer.clear()
        linked.clear()
        if link_text and len(link_text) >= _LINK_DENSITY * len(norm(joined)):
            return
        for chunk in _PARAGRAPH_BREAK.split(joined):
            if text := norm(chunk):
                out.append(Block(text, heading=False))

    # An explicit stack instead of recursion: pages nest thousands of unclosed elements.
    stack: list[tuple[Tag, int]] = [(container, 0)]
    links_open = 0
    if container.name in _BLOCK_TAGS:
        flush()
    while stack:
        el, index = stack.pop()
        if index >= len(el.contents):
            if el.name in _BLOCK_TAGS:
                flush()
            if el.name == "a":
                links_open -= 1
            continue
        stack.append((el, index + 1))
        child = el.contents[index]
        if not isinstance(child, Tag):
            if type(child) in TEXT_TYPES:
                buffer.append(child)
                if links_open:
                    linked.append(child)
            continue
        name = child.name
        if name in _HEADING_TAGS or (name in ("p", "div") and (bold := _bold_heading(child))):
            flush()
            text = text_of(child) if name in _HEADING_TAGS else bold
            if text := norm(text).rstrip(":").strip():
                out.append(Block(text, heading=True))
            continue
        if name in _BLOCK_TAGS:
            flush()
        elif name == "br":
            buffer.append("\n\n" if _double_break(child) else " ")
        elif name == "a":
            links_open += 1
        stack.append((child, 0))
    flush()
    return out


def _double_break(br: Tag) -> bool:
    """<br><br> separates paragraphs in old CMS output; a single <br> is just a line end."""
    for direction in (br.next_siblings, br.previous_siblings):
        for sibling in direction:
            if isinstance(sibling, Tag):
                if sibling.name == "br":
                    return True
                break
            if type(sibling) in TEXT_TYPES and sibling.strip():
                break
    return False
