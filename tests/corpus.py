"""A generated corpus of report pages in Refworld's legacy layout, for pipeline tests and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

COUNTRIES = [
    ("Mali", "Africa"), ("Niger", "Africa"), ("Ghana", "Africa"), ("Kenya", "Africa"),
    ("Burma", "East Asia and Pacific"), ("Thailand", "East Asia and Pacific"),
    ("Cambodia", "East Asia and Pacific"), ("Indonesia", "East Asia and Pacific"),
    ("Moldova", "Europe"), ("Albania", "Europe"), ("Ukraine", "Europe"), ("Romania", "Europe"),
    ("Jordan", "Near East"), ("Lebanon", "Near East"), ("Oman", "Near East"),
    ("Nepal", "South and Central Asia"), ("India", "South and Central Asia"),
    ("Uzbekistan", "South and Central Asia"), ("Haiti", "Western Hemisphere"),
    ("Guatemala", "Western Hemisphere"), ("Peru", "Western Hemisphere"),
]
TIERS = ["Tier 1", "Tier 2", "Tier 2 Watch List", "Tier 3"]
ROLE_SENTENCES = [
    "{c} is primarily a source country for men, women, and children trafficked for forced labor.",
    "{c} is a source, transit, and destination country for women and children subjected to sex trafficking.",
    "{c} is principally a country of destination for men and women in forced labor and domestic servitude.",
]
FILLER = (
    "The Government of {c} does not yet fully comply with the minimum standards for the elimination "
    "of trafficking; however, it is making significant efforts to do so. Authorities investigated "
    "{n} cases and convicted {m} traffickers during the reporting period, and referred victims to "
    "shelters run by non-governmental organizations. "
)


@dataclass(frozen=True)
class ReportPage:
    path: str
    country: str
    region: str
    year: int
    tier: str
    html: bytes

    @property
    def title(self) -> str:
        return f"U.S. Department of State {self.year} Trafficking in Persons Report - {self.country}"


def report_page(index: int, *, padding: int = 2) -> ReportPage:
    """The `index`-th page of the corpus: distinct path, country/year/tier combination, text."""
    country, region = COUNTRIES[index % len(COUNTRIES)]
    year = 2002 + index // len(COUNTRIES) + index % 7
    tier = TIERS[index % len(TIERS)]
    title = f"U.S. Department of State {year} Trafficking in Persons Report - {country}"
    narrative = [ROLE_SENTENCES[index % len(ROLE_SENTENCES)].format(c=country)]
    narrative += [FILLER.format(c=country, n=10 + index, m=index % 9) * 2 for _ in range(padding)]
    paragraphs = "\n".join(f"<p>{escape(p)}</p>" for p in narrative)
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Refworld | {escape(title)}</title></head>
<body>
<div id="header"><a href="/">Refworld</a> <ul class="nav"><li><a href="/countries">Countries</a></li><li><a href="/themes">Themes</a></li></ul></div>
<div id="content">
<p class="updated">Last Updated: Thursday, 26 May 2016, 08:56 GMT</p>
<h1>{escape(title)}</h1>
<table class="docmeta">
<tr><td><strong>Publisher</strong></td><td>United States Department of State</td></tr>
<tr><td><strong>Author</strong></td><td>Office to Monitor and Combat Trafficking in Persons</td></tr>
<tr><td><strong>Publication Date</strong></td><td>5 June {year}</td></tr>
<tr><td><strong>Cite as</strong></td><td>United States Department of State, {escape(title)}, 5 June {year}, available at: [accessed 26 May 2016]</td></tr>
<tr><td><strong>Disclaimer</strong></td><td>This is not a UNHCR publication. UNHCR is not responsible for, nor does it necessarily endorse, its content.</td></tr>
</table>
<div id="fulltext">
<p><b>{escape(country)} ({escape(tier)})</b></p>
{paragraphs}
</div>
<div class="related"><h3>Related documents</h3><ul><li><a href="/docid/other">Another report</a></li></ul></div>
<p class="tools"><a href="#print">Print</a> <a href="#email">Email</a></p>
</div>
<div id="search"><form action="/search"><label>Search Refworld</label><input name="q"></form></div>
</body></html>"""
    return ReportPage(f"/docid/report-{index:05d}.html", country, region, year, tier, html.encode())
