"""One report, many copies: the key shared by every copy of a report, and which copy comes first.

The same report (the 2019 Trafficking in Persons Report on Mali) is published by the State
Department and republished by Refworld, ecoi.net and others, as HTML pages and inside PDFs.
Each copy stays its own document; its `report_key` (workers/documents.py, set when it is indexed)
ties them together for search (one hit per report, field collapsing) and for counting (facets
count reports, not copies).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from workers.documents import ReportDocument

# Where each publisher publishes its own reports. A copy on any other host is a mirror.
# A host matches itself and its subdomains (state.gov covers www.state.gov and
# 2009-2017.state.gov, the State Department's archive of earlier administrations).
PUBLISHER_HOSTS: dict[str, tuple[str, ...]] = {
    "United States Department of State": ("state.gov",),
    "Freedom House": ("freedomhouse.org",),
    "Human Rights Watch": ("hrw.org",),
    "Amnesty International": ("amnesty.org",),
    "UNHCR": ("unhcr.org", "refworld.org"),
}
# Copies listed under one hit; a report is rarely mirrored more often.
MAX_COPIES = 20
# The fields a copy is listed with under the hit that stands for its report.
COPY_FIELDS = ("id", "url", "source", "publisher", "fetched_at", "tier", "report_year", "page_start")


def on_publisher_site(url: str | None, publisher: str | None) -> bool:
    host = (urlsplit(url or "").hostname or "").lower()
    return any(host == own or host.endswith("." + own) for own in PUBLISHER_HOSTS.get(publisher or "", ()))


def best_first(copies: Iterable[ReportDocument]) -> list[ReportDocument]:
    """The publisher's own site before mirrors, HTML before PDF, then the newest fetch."""
    newest = sorted(copies, key=lambda c: c.fetched_at or "", reverse=True)
    return sorted(newest, key=lambda c: (not on_publisher_site(c.url, c.publisher), c.source == "pdf"))


def listed(copy: ReportDocument) -> dict:
    return {field: getattr(copy, field) for field in COPY_FIELDS}
