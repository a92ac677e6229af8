"""What changed between two editions of a report: per section, the paragraphs added, removed,
changed (reworded) and unchanged, and the word-level difference of a changed paragraph.

Sections are matched by heading, whatever its case, punctuation or tier ("THAILAND: TIER 2"
matches "Thailand: Tier 2 Watch List"), then by similar wording for headings reworded a
little. Paragraphs are aligned in order (difflib); a paragraph moved within its section is
unchanged, and a removed and an added paragraph that share most of their words are one
changed paragraph. Pure functions: the command reads the two documents and prints this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workers.documents import ReportDocument

# Two headings with at least this similarity (after normalising) are one section reworded.
HEADING_SIMILARITY = 0.75
# A removed and an added paragraph this similar in words are one paragraph reworded.
PARAGRAPH_SIMILARITY = 0.5
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_TIER = re.compile(r"\btier\s+(?:[0-9]+|i{1,3}|one|two|three)(?:\s+watch\s*list)?\b|\bspecial\s+case\b", re.I)
_NOT_WORD = re.compile(r"[\W_]+")
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]+")


@dataclass
class SectionDiff:
    heading: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[dict[str, str]] = field(default_factory=list)
    unchanged: int = 0

    def as_dict(self) -> dict:
        return {"heading": self.heading, "added": self.added, "removed": self.removed, "changed": self.changed,
                "unchanged": self.unchanged}

    @property
    def differs(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def paragraphs(text: str | None) -> list[str]:
    return [" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(text or "") if p.strip()]


def sections_of(document: ReportDocument) -> list[tuple[str, list[str]]]:
    """(heading, paragraphs) of a document; one section headed by its title when it has none."""
    found = [(s.get("heading") or "", paragraphs(s.get("text"))) for s in document.sections]
    return found or [(document.title or "", paragraphs(document.body))]


def heading_key(heading: str) -> str:
    """A heading without case, punctuation or the tier it may state."""
    return " ".join(_NOT_WORD.sub(" ", _TIER.sub(" ", heading)).lower().split())


def _similarity(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def match_sections(old: list[tuple[str, list[str]]], new: list[tuple[str, list[str]]]) -> list[tuple[int | None, int | None]]:
    """Pairs of indices (old, new) of the same section; None on the side where it is missing.
    In the new edition's order, sections only in the old one after them."""
    old_keys, new_keys = [heading_key(h) for h, _ in old], [heading_key(h) for h, _ in new]
    pairs: dict[int, int] = {}
    unused = set(range(len(old)))
    for j, key in enumerate(new_keys):  # the same heading first
        i = next((i for i in sorted(unused) if old_keys[i] == key), None)
        if i is not None:
            pairs[j] = i
            unused.discard(i)
    for j, key in enumerate(new_keys):  # then the most similar reworded one
        if j in pairs or not unused:
            continue
        score, i = max((_similarity(old_keys[i], key), i) for i in unused)
        if score >= HEADING_SIMILARITY:
            pairs[j] = i
            unused.discard(i)
    matched: list[tuple[int | None, int | None]] = [(pairs.get(j), j) for j in range(len(new))]
    return matched + [(i, None) for i in sorted(unused)]


def _words(text: str) -> list[str]:
    return text.lower().split()


def diff_paragraphs(old: list[str], new: list[str], heading: str) -> SectionDiff:
    result = SectionDiff(heading)
    removed: list[str] = []
    added: list[str] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "equal":
            result.unchanged += i2 - i1
        else:
            removed += old[i1:i2]
            added += new[j1:j2]
    moved = set(removed) & set(added)  # the same text elsewhere in the section: not a change
    result.unchanged += sum(1 for p in added if p in moved)
    removed = [p for p in removed if p not in moved]
    added = [p for p in added if p not in moved]
    pairs = _reworded(removed, added)
    paired_old = {i for i, _ in pairs.values()}
    for j, text in enumerate(added):
        if j in pairs:
            result.changed.append({"from": removed[pairs[j][0]], "to": text})
        else:
            result.added.append(text)
    result.removed = [text for i, text in enumerate(removed) if i not in paired_old]
    return result


def _reworded(removed: list[str], added: list[str]) -> dict[int, tuple[int, float]]:
    """added index -> (removed index, similarity) for the pairs that are one paragraph reworded,
    most similar pairs first, each paragraph in one pair at most."""
    if not removed or not added:
        return {}
    old_words = [_words(p) for p in removed]
    candidates = []
    for j, text in enumerate(added):
        new_words = _words(text)
        matcher = SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(new_words)  # difflib caches what it learns about the second sequence
        for i, words in enumerate(old_words):
            matcher.set_seq1(words)
            if matcher.real_quick_ratio() >= PARAGRAPH_SIMILARITY and matcher.quick_ratio() >= PARAGRAPH_SIMILARITY:
                score = matcher.ratio()
                if score >= PARAGRAPH_SIMILARITY:
                    candidates.append((score, i, j))
    pairs: dict[int, tuple[int, float]] = {}
    taken: set[int] = set()
    for score, i, j in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        if j not in pairs and i not in taken:
            pairs[j] = (i, score)
            taken.add(i)
    return pairs


def diff_documents(old: ReportDocument, new: ReportDocument) -> list[SectionDiff]:
    """Every section of either edition, in the newer one's order, with what changed in it."""
    old_sections, new_sections = sections_of(old), sections_of(new)
    found = []
    for i, j in match_sections(old_sections, new_sections):
        heading = new_sections[j][0] if j is not None else old_sections[i][0]
        found.append(diff_paragraphs(old_sections[i][1] if i is not None else [],
                                     new_sections[j][1] if j is not None else [], heading))
    return found


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """The two texts as runs of ("equal" | "delete" | "insert", text), words and spaces kept."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    runs: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            runs.append(("equal", "".join(a[i1:i2])))
            continue
        if op in ("delete", "replace"):
            runs.append(("delete", "".join(a[i1:i2])))
        if op in ("insert", "replace"):
            runs.append(("insert", "".join(b[j1:j2])))
    return runs
