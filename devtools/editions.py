"""The demo site's two editions (2023, 2024) of two countries' State Department chapters.

Served by the demo site (devtools/demo.py) as /editions/<country>-<year>.html and by
tests/test_editions.py. The changes between the editions are known, so `report-ingest diff
Ghana 2023 2024` after `make demo` shows a real result (docs/editions.md), and the tests
check it exactly: Ghana moves down to the Watch List, with a reworded tier paragraph, a
reworded and an added paragraph under PROSECUTION and a paragraph dropped from PROTECTION;
Peru moves up to Tier 2, with a reworded paragraph and an added one.
"""

from __future__ import annotations

from html import escape

# (country, year) -> sections: (heading, paragraphs). The tier is in the first heading, as printed.
EDITIONS: dict[tuple[str, int], list[tuple[str, list[str]]]] = {
    ("Ghana", 2023): [
        ("GHANA: TIER 2", ["The Government of Ghana does not fully meet the minimum standards for the elimination "
                           "of trafficking but is making significant efforts to do so. The government demonstrated "
                           "overall increasing efforts compared with the previous reporting period; therefore Ghana "
                           "remained on Tier 2."]),
        ("PRESCRIBED RECOMMENDATIONS", ["Increase investigations and prosecutions of trafficking crimes, including "
                                        "internal child trafficking. Fund the Human Trafficking Secretariat."]),
        ("PROSECUTION", ["The government maintained law enforcement efforts. The 2005 Human Trafficking Act "
                         "criminalized sex trafficking and labor trafficking.",
                         "The government initiated 41 investigations and prosecuted 23 defendants in 2022."]),
        ("PROTECTION", ["The government identified 548 victims and referred them to shelters.",
                        "The government operated two shelters for child victims of trafficking."]),
        ("TRAFFICKING PROFILE", ["Traffickers exploit Ghanaian children in forced labor in fishing on Lake Volta."]),
    ],
    ("Ghana", 2024): [
        ("GHANA: TIER 2 WATCH LIST", ["The Government of Ghana does not fully meet the minimum standards for the "
                                      "elimination of trafficking but is making significant efforts to do so. These "
                                      "efforts were not serious and sustained compared with the previous reporting "
                                      "period; therefore Ghana was downgraded to Tier 2 Watch List."]),
        ("Prescribed Recommendations", ["Increase investigations and prosecutions of trafficking crimes, including "
                                        "internal child trafficking. Fund the Human Trafficking Secretariat."]),
        ("PROSECUTION", ["The government maintained law enforcement efforts. The 2005 Human Trafficking Act "
                         "criminalized sex trafficking and labor trafficking.",
                         "The government initiated 29 investigations and prosecuted 11 defendants in 2023.",
                         "Courts convicted no traffickers during the reporting period."]),
        ("PROTECTION", ["The government identified 548 victims and referred them to shelters."]),
        ("TRAFFICKING PROFILE", ["Traffickers exploit Ghanaian children in forced labor in fishing on Lake Volta."]),
    ],
    ("Peru", 2023): [
        ("PERU: TIER 2 WATCH LIST", ["The Government of Peru does not fully meet the minimum standards for the "
                                     "elimination of trafficking but is making significant efforts to do so; "
                                     "therefore Peru remained on Tier 2 Watch List."]),
        ("PROTECTION", ["Authorities identified 380 victims but referred few of them to services."]),
        ("PREVENTION", ["The government approved a national policy against trafficking."]),
    ],
    ("Peru", 2024): [
        ("PERU: TIER 2", ["The Government of Peru does not fully meet the minimum standards for the elimination "
                          "of trafficking but is making significant efforts to do so; therefore Peru was upgraded "
                          "to Tier 2."]),
        ("PROTECTION", ["Authorities identified 512 victims and referred most of them to services."]),
        ("PREVENTION", ["The government approved a national policy against trafficking.",
                        "The government funded a hotline in Spanish, Quechua and Aymara."]),
    ],
}


def path(country: str, year: int) -> str:
    return f"/editions/{country.lower()}-{year}.html"


def page(country: str, year: int, sections: list[tuple[str, list[str]]] | None = None) -> str:
    """The State Department chapter page of an edition (`sections`: other text than its own)."""
    sections = EDITIONS[(country, year)] if sections is None else sections
    body = "\n".join(f"<p><strong>{escape(heading)}</strong></p>\n" + "\n".join(f"<p>{escape(p)}</p>" for p in paras)
                     for heading, paras in sections)
    report = f"{year} Trafficking in Persons Report"
    return f"""<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="UTF-8">
<title>{country} - United States Department of State</title>
<meta name="description" content="{report}: {country}">
<meta property="og:site_name" content="United States Department of State">
<meta property="article:published_time" content="{year}-06-24T10:00:00+00:00">
</head>
<body class="report-template-default single single-report">
<main id="content">
<div class="featured-content featured-content--report">
<div class="featured-content__copy">
<a class="featured-content__eyebrow" href="https://www.state.gov/reports/{year}-trafficking-in-persons-report/">{report}</a>
<h1 class="featured-content__headline stars-above">{country}</h1>
</div>
</div>
<div class="report__content">
<div class="entry-content">
{body}
</div>
</div>
</main>
</body>
</html>
"""


def pages() -> dict[str, bytes]:
    """Path -> HTML of every edition page."""
    return {path(country, year): page(country, year).encode() for country, year in EDITIONS}
