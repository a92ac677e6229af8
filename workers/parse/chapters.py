"""A full report's pages -> its country chapters, with the pages each one spans.

A chapter opens with a heading line naming a country and its tier, as the reports print
them: "MALI (Tier 2)", "MALI: TIER 2", "Mali (Tier 2 Watch List)", "SOMALIA (Special Case)",
"SPECIAL CASE: SOMALIA", or a long name on one line and "(Tier 3)" on the next. The country
must be one the country table knows, so front matter ("TIER 2", "INTRODUCTION") never
opens a chapter. A chapter runs to the next heading, or to a page headed by back matter
(appendices, glossary, conventions, index), which belongs to no country.

Running headers and footers ("TRAFFICKING IN PERSONS REPORT JUNE 2019", page numbers) are
lines repeated at the top or bottom of many pages; they are taken out of the text first
and kept apart, since they name the report's series and year.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from . import countries, facets
from .countries import Country

_MAX_HEADING_CHARS = 90
_SPECIAL_FIRST = re.compile(r"^special\s+cases?\s*[:\u2013-]\s*(?P<name>.{2,60})$", re.I)
_TIER_ONLY = re.compile(r"^\(\s*(?:tier\b[^()]*|special\s+case)\s*\)$", re.I)
# Titles of the parts after the country chapters. Matched only in capitals at a page top,
# where a chapter's own subheadings ("PROSECUTION") never collide with them.
_BACK_MATTER = re.compile(
    r"^(?:APPENDI(?:X|CES)|ANNEX(?:ES)?|GLOSSARY|ACRONYMS|ABBREVIATIONS|INDEX|ENDNOTES|NOTES|"
    r"PHOTO CREDITS|SPECIAL CASES$|RELEVANT INTERNATIONAL CONVENTIONS|STOPPING HUMAN TRAFFICKING|"
    r"INTERNATIONAL,? REGIONAL,? AND SUB-?REGIONAL ORGANIZATIONS|TIP REPORT HEROES)\b")
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?[-\u2013\s]*\d{1,4}[-\u2013\s]*(?:\s*(?:of|/)\s*\d{1,4})?$", re.I)
_EDGE_LINES = 2          # lines at the top and at the bottom of a page where running lines sit
_RUNNING_SHARE = 0.3     # on at least this share of pages (and three of them)
_TOP_LINES = 3           # back-matter titles are looked for among a page's first lines
# A "chapter" shorter than this is a line of a tier list in the front matter, not a narrative.
MIN_CHAPTER_CHARS = 200


@dataclass
class Chapter:
    heading: str
    country: Country
    tier: str | None
    page_start: int
    page_end: int
    lines: list[str] = field(default_factory=list)

    @property
    def chars(self) -> int:
        return sum(len(line) for line in self.lines)


@dataclass
class Split:
    chapters: list[Chapter]
    cover: list[str]            # the first page's lines: the report's title, often its year
    running: list[str]          # running headers and footers, most frequent first
    pages: list[list[str]]      # every page's lines without running lines, for single documents


def _running_key(line: str) -> str:
    return re.sub(r"\d+", "#", line.casefold())


def _running_lines(pages: list[list[str]]) -> Counter[str]:
    """Lines (digits ignored) that sit at a page's edge on many pages."""
    seen: Counter[str] = Counter()
    for lines in pages:
        seen.update({_running_key(line) for line in lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]})
    floor = max(3, _RUNNING_SHARE * len(pages))
    return Counter({key: n for key, n in seen.items() if n >= floor})


def _clean(lines: list[str], running: Counter[str]) -> list[str]:
    def furniture(index: int, line: str) -> bool:
        at_edge = index < _EDGE_LINES or index >= len(lines) - _EDGE_LINES
        return at_edge and (_running_key(line) in running or bool(_PAGE_NUMBER.match(line)))

    return [line for i, line in enumerate(lines) if not furniture(i, line)]


def heading(line: str, following: str | None = None) -> tuple[Country, str | None, int] | None:
    """(country, tier, lines used) when the line opens a country chapter, else None."""
    if len(line) > _MAX_HEADING_CHARS:
        return None
    if match := _SPECIAL_FIRST.match(line):
        country = countries.lookup(match.group("name"))
        return (country, "Special Case", 1) if country else None
    if following is not None and _TIER_ONLY.match(following) and (country := countries.lookup(line)):
        return country, facets.tier_from([following]), 2
    tier = facets.tier_from([line])
    if tier is None:
        return None
    if line.endswith(")"):
        name = line[:line.rfind("(")]
    elif ":" in line:
        name = line[:line.rfind(":")]
    else:
        return None
    country = countries.lookup(name.strip(" :-\u2013"))
    return (country, tier, 1) if country else None


def split_chapters(page_texts: list[str]) -> Split:
    raw = [[line.strip() for line in text.split("\n") if line.strip()] for text in page_texts]
    running = _running_lines(raw) if len(raw) >= 3 else Counter()
    pages = [_clean(lines, running) for lines in raw]
    chapters: list[Chapter] = []
    current: Chapter | None = None
    for number, lines in enumerate(pages, start=1):
        if current and any(_BACK_MATTER.match(line) for line in lines[:_TOP_LINES]):
            current = None
        index = 0
        while index < len(lines):
            found = heading(lines[index], lines[index + 1] if index + 1 < len(lines) else None)
            if found:
                country, tier, used = found
                current = Chapter(" ".join(lines[index:index + used]), country, tier, number, number)
                chapters.append(current)
                index += used
                continue
            if current:
                current.lines.append(lines[index])
                current.page_end = number
            index += 1
    # Tier lists in the front matter look like headings with nothing under them.
    kept = [chapter for chapter in chapters if chapter.chars >= MIN_CHAPTER_CHARS]
    by_count = [_original(key, raw) for key, _n in running.most_common()]
    return Split(kept, raw[0] if raw else [],
                 [line for line in by_count if line and not _PAGE_NUMBER.match(line)], pages)


def _original(key: str, pages: list[list[str]]) -> str | None:
    """A running line as printed (the key has its digits replaced)."""
    return next((line for lines in pages for line in lines if _running_key(line) == key), None)
