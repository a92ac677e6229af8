"""Metadata written as label/value pairs: table rows, definition lists, bold run-ins.

Sites restyle their markup far more often than their wording, so a label is
recognised by its text ("Publication Date", "publication date:") in any of the
usual label elements, never by CSS class.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from .tree import norm, tag_of, text_of

_LABEL_TAGS = ("td", "th", "dt", "strong", "b", "span", "label", "div", "p")
_CELL_TAGS = frozenset({"td", "th"})
_INLINE_LABEL_TAGS = frozenset({"strong", "b", "span", "label"})
# A run-in label's paragraph is dropped from the body only if it is no bigger than a
# metadata line; a longer parent means the label sits inside the report text itself.
_MAX_RUN_IN_CHARS = 1500


@dataclass
class Labelled:
    value: str
    values: list[str]
    # Elements holding the pair, removed before the body is extracted.
    elements: list[etree._Element]


def label_key(text: str) -> str:
    return norm(text).rstrip(":").strip().casefold()


def _following_siblings(el: etree._Element, tags: frozenset[str]) -> list[etree._Element]:
    found = []
    sibling = el.getnext()
    while sibling is not None and tag_of(sibling) in tags:
        found.append(sibling)
        sibling = sibling.getnext()
    return found


def _run_in_value(label: etree._Element) -> str:
    """Text after an inline label inside its parent: <p><b>Author:</b> UNHCR</p>."""
    parts = [label.tail or ""]
    for sibling in label.itersiblings():
        parts.append(text_of(sibling))
        parts.append(sibling.tail or "")
    return norm("".join(parts))


def _pair(label: etree._Element) -> Labelled | None:
    tag = tag_of(label)
    if tag == "dt":
        values = _following_siblings(label, frozenset({"dd"}))
        if values:
            texts = [t for v in values if (t := text_of(v))]
            return Labelled(" ".join(texts), texts, [label, *values])
        return None
    if tag in _CELL_TAGS:
        cells = _following_siblings(label, _CELL_TAGS)[:1]
        if cells:
            row = label.getparent()
            text = text_of(cells[0])
            return Labelled(text, [text], [row if tag_of(row) == "tr" else cells[0]])
        return None
    if tag in _INLINE_LABEL_TAGS or tag in {"div", "p"}:
        parent = label.getparent()
        value = _run_in_value(label)
        if value:
            holder = parent if parent is not None and len(text_of(parent)) <= _MAX_RUN_IN_CHARS else label
            return Labelled(value, [value], [holder])
        # Label alone in its own cell or term: the value is in the next cell or dd.
        if parent is not None and tag_of(parent) in _CELL_TAGS | {"dt"}:
            return _pair(parent)
        sibling = label.getnext()
        if sibling is not None and (text := text_of(sibling)):
            return Labelled(text, [text], [label, sibling])
    return None


def find_labelled(root: etree._Element, labels: dict[str, str]) -> dict[str, Labelled]:
    """Map each wanted field to its value; `labels` maps label text (casefolded) to field."""
    longest = max(len(k) for k in labels) + 2
    found: dict[str, Labelled] = {}
    for el in root.iter(*_LABEL_TAGS):
        # Label elements hold a few words; reading the text of big containers is wasted work.
        if len(el) > 2:
            continue
        field = labels.get(label_key(text_of(el))) if _short(el, longest) else None
        if field is None or field in found:
            continue
        if (pair := _pair(el)) is not None:
            found[field] = pair
    return found


def _short(el: etree._Element, limit: int) -> bool:
    total = len(el.text or "")
    for child in el:
        total += len(child.text or "") + len(child.tail or "")
        if total > limit * 3:
            return False
    return total <= limit * 3


def remove(elements: list[etree._Element]) -> None:
    """Detach elements but keep the text that follows them (their tail) in place."""
    for el in elements:
        parent = el.getparent()
        if parent is None:
            continue
        tail = el.tail
        previous = el.getprevious()
        if tail:
            if previous is not None:
                previous.tail = (previous.tail or "") + tail
            else:
                parent.text = (parent.text or "") + tail
        parent.remove(el)
