"""Publisher names: one organisation, one name, whichever way a page writes it.

Mirrors prefix an abbreviation and suffix a role ("AI – Amnesty International
(Author)"), and the State Department has half a dozen spellings; without this the
publisher facet splits one organisation into several.
"""

from __future__ import annotations

import re

from .tree import Page, norm

STATE_DEPARTMENT = "United States Department of State"
_STATE_DEPARTMENT = re.compile(
    r"^(the\s+)?((u\.?\s?s\.?|united\s+states)\s+(department\s+of\s+state|state\s+department)"
    r"|(department\s+of\s+state|state\s+department)\s*\(u\.?s\.?\)|usdos)$",
    re.I,
)
# "(Author)" and its translations, as ecoi.net and similar catalogues print them.
_ROLE = re.compile(r"\s*\((?:author|autor|auteur|autore|publisher|herausgeber|[ée]diteur|"
                   r"editor|published\s+by|ver[öo]ffentlicht\s+von)\)\s*$", re.I)
# "USDOS – US Department of State": an abbreviation, a dash, the name.
_ABBREVIATED = re.compile(r"^[A-Z][A-Za-z.&]{0,11}\s+[\u2013\u2014-]\s+(?P<name>\S.{2,})$")
# "Trafficking Watch » Feed" ("» Flux" in French), the title WordPress and most CMSs give their feed link.
_FEED_TITLE = re.compile(r"^(?P<name>.+?)\s*(?:\u00bb|&raquo;|-|\u2013|\|)\s*(?:rss\s+)?(?:feed|flux)$", re.I)
# "Copyright © 2016 South Asia Anti-Trafficking Network. All rights reserved."
_COPYRIGHT = re.compile(
    r"(?:\u00a9|\(c\)|copyright)\s*(?:\u00a9\s*)?(?:\d{4}(?:\s*[-\u2013]\s*\d{4})?,?\s+)?"
    r"(?P<name>[A-Z][\w&'\u2019 .-]{2,80}?)\s*(?:\.\s|\.$|,|\||all\s+rights|$)", re.I)


def canonical(text: str | None) -> str | None:
    """The organisation's one name: role and abbreviation dropped, known spellings merged."""
    name = _ROLE.sub("", norm(text))
    if match := _ABBREVIATED.match(name):
        name = match.group("name")
    if _STATE_DEPARTMENT.match(name):
        return STATE_DEPARTMENT
    return name or None


def site_name(page: Page) -> str | None:
    """The site's own name when no meta tag gives it: feed title, then copyright line."""
    for title in page.feed_titles:
        if (match := _FEED_TITLE.match(title)) and "comment" not in title.lower():
            return norm(match.group("name"))
    for line in reversed(list(page.strings(_COPYRIGHT))):
        if match := _COPYRIGHT.search(norm(line.parent.get_text() if line.parent else line)):
            return norm(match.group("name")).rstrip(".")
    return None
