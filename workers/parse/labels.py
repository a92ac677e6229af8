"""Metadata written as label/value pairs: table rows, definition lists, bold run-ins, lines.

Sites restyle their markup far more often than their wording, so a label is
recognised by its text ("Publication Date", "publication date:", "Veröffentlicht:")
in any of the usual label elements, never by CSS class. A label and its value may
also share one short line ("Published: 1 July 2021").
"""

from __future__ import annotations

from dataclasses import dataclass

from bs4 import Tag

from .tree import TEXT_TYPES, Page, element_siblings, next_element, norm, text_of

_LABEL_TAGS = ("td", "th", "dt", "strong", "b", "span", "label", "div", "p", "li", "font")
_CELL_TAGS = frozenset({"td", "th"})
_INLINE_LABEL_TAGS = frozenset({"strong", "b", "span", "label", "font"})
# A run-in label's paragraph is dropped from the body only if it is no bigger than a
# metadata line; a longer parent means the label sits inside the report text itself.
_MAX_RUN_IN_CHARS = 1500
# "Label: value" on one line is metadata only when the whole line is this short.
_MAX_LINE = 160
_MAX_LABEL_NODES = 24


@dataclass
class Labelled:
    value: str
    values: list[str]
    # Elements holding the pair, removed before the body is extracted.
    elements: list[Tag]


def label_key(text: str) -> str:
    return norm(text).rstrip(":").strip().casefold()


def _run_in_value(label: Tag) -> str:
    """Text after an inline label inside its parent: <p><b>Author:</b> UNHCR</p>."""
    parts = []
    for sibling in label.next_siblings:
        if isinstance(sibling, Tag):
            parts.append(sibling.get_text())
        elif type(sibling) in TEXT_TYPES:
            parts.append(sibling)
    return norm("".join(parts))


def _pair(label: Tag) -> Labelled | None:
    tag = label.name
    if tag == "dt":
        values = []
        for sibling in element_siblings(label):
            if sibling.name != "dd":
                break
            values.append(sibling)
        if values:
            texts = [t for v in values if (t := text_of(v))]
            return Labelled(" ".join(texts), texts, [label, *values])
        return None
    if tag in _CELL_TAGS:
        cell = next_element(label)
        if cell is not None and cell.name in _CELL_TAGS:
            row = label.parent
            text = text_of(cell)
            return Labelled(text, [text], [row if row is not None and row.name == "tr" else cell])
        return None
    if tag in _INLINE_LABEL_TAGS or tag in {"div", "p", "li"}:
        parent = label.parent
        value = _run_in_value(label)
        if value:
            holder = parent if parent is not None and len(text_of(parent)) <= _MAX_RUN_IN_CHARS else label
            return Labelled(value, [value], [holder])
        # Label alone in its own cell or term: the value is in the next cell or dd.
        if parent is not None and parent.name in _CELL_TAGS | {"dt"}:
            return _pair(parent)
        sibling = next_element(label)
        if sibling is not None and (text := text_of(sibling)):
            return Labelled(text, [text], [label, sibling])
    return None


def _bounded_text(el: Tag, limit: int) -> str | None:
    """The element's text, or None once it is longer than `limit` or spans many elements.

    Labels are a few words in one or two elements; stopping early keeps this cheap on
    big or deeply nested containers (bs4's own text walks visit the whole subtree).
    """
    parts: list[str] = []
    total, budget = 0, _MAX_LABEL_NODES
    stack = [iter(el.contents)]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            continue
        budget -= 1
        if budget < 0:
            return None
        if isinstance(child, Tag):
            stack.append(iter(child.contents))
        elif type(child) in TEXT_TYPES:
            total += len(child)
            if total > limit:
                return None
            parts.append(child)
    return norm("".join(parts))


def find_labelled(page: Page, labels: dict[str, str]) -> dict[str, Labelled]:
    """Map each wanted field to its value; `labels` maps label text (casefolded) to field."""
    longest = max(len(k) for k in labels) + 2
    found: dict[str, Labelled] = {}
    for el in page.tags(*_LABEL_TAGS):
        # Label elements hold a few words; reading the text of big containers is wasted work.
        if sum(1 for c in el.contents if isinstance(c, Tag)) > 2:
            continue
        text = _bounded_text(el, max(longest * 3, _MAX_LINE))
        if not text:
            continue
        key = label_key(text) if len(text) <= longest * 3 else ""
        field = labels.get(key)
        if field is not None:
            if field not in found and (pair := _pair(el)) is not None:
                found[field] = pair
            continue
        # "Published: 1 July 2021" in one element.
        head, colon, rest = text.partition(":")
        if colon and (field := labels.get(label_key(head))) and field not in found and norm(rest):
            found[field] = Labelled(norm(rest), [norm(rest)], [el])
    return found
