"""Generated PDF reports (fpdf2) for tests, the benchmark and the demo site.

A full report looks like the State Department's 2001-2016 editions: a cover, front matter,
country chapters that open with "MALI (Tier 2)"-style headings and run over several pages,
special cases, then appendices; a running header and a page number on every page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fpdf import FPDF

# Fixed, so that a regenerated file is byte-for-byte the same.
CREATED = datetime(2019, 6, 20, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Chapter:
    heading: str          # as printed: "MALI (Tier 2)", "THAILAND: TIER 2", "SPECIAL CASE: SOMALIA"
    name: str             # the country as the narrative names it
    paragraphs: int = 4   # narrative paragraphs per section; more spans more pages


NARRATIVE = (
    "{c} is a source, transit, and destination country for men, women, and children subjected "
    "to forced labor and sex trafficking. Traffickers exploit children in forced begging and "
    "domestic servitude, and women are exploited in commercial sex in mining areas."
)
GOVERNMENT = (
    "The Government of {c} does not fully meet the minimum standards for the elimination of "
    "trafficking but is making significant efforts to do so. Authorities investigated {n} cases "
    "and convicted {m} traffickers during the reporting period, and referred victims to shelters "
    "run by non-governmental organizations in the capital and in three regions of the country."
)
SECTIONS = ("PROSECUTION", "PROTECTION", "PREVENTION", "TRAFFICKING PROFILE")

FRONT_MATTER = [
    ("LETTER FROM THE SECRETARY", "Dear Reader: This report is the product of a year of work by "
     "embassies around the world and by the Office to Monitor and Combat Trafficking in Persons."),
    ("INTRODUCTION", "Human trafficking deprives millions of people of their freedom. Tier placements "
     "are based on the extent of government efforts to meet the minimum standards."),
    ("TIER PLACEMENTS", "TIER 1\nAustralia  Canada  France\nTIER 2\nMali  Thailand\n"
     "TIER 2 WATCH LIST\nLaos\nTIER 3\nBurma  Eritrea"),
]
APPENDICES = [
    ("RELEVANT INTERNATIONAL CONVENTIONS", "Table of ratifications of the Palermo Protocol and ILO "
     "conventions by country. Mali ratified the protocol in 2002."),
    ("GLOSSARY OF ACRONYMS", "ILO - International Labor Organization\nNGO - non-governmental organization"),
]


class _Report(FPDF):
    def __init__(self, running_header: str):
        super().__init__(format="Letter")
        self.running_header = running_header
        self.set_creation_date(CREATED)
        self.set_auto_page_break(True, margin=20)

    def header(self) -> None:
        if self.page_no() > 1:
            self.set_font("Helvetica", size=8)
            self.cell(0, 6, self.running_header, align="R", new_x="LMARGIN", new_y="NEXT")
            self.ln(2)

    def footer(self) -> None:
        if self.page_no() > 1:
            self.set_y(-14)
            self.set_font("Helvetica", size=8)
            self.cell(0, 6, str(self.page_no()), align="C")


def _heading(pdf: FPDF, text: str, size: int = 15) -> None:
    pdf.set_font("Helvetica", "B", size)
    pdf.multi_cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _paragraph(pdf: FPDF, text: str) -> None:
    pdf.set_font("Helvetica", size=10)
    for line in text.split("\n"):
        pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def _chapter(pdf: FPDF, chapter: Chapter, number: int) -> None:
    pdf.add_page()
    _heading(pdf, chapter.heading)
    _paragraph(pdf, GOVERNMENT.format(c=chapter.name, n=number + 3, m=number))
    _heading(pdf, f"Recommendations for {chapter.name}", size=11)
    _paragraph(pdf, f"Increase efforts to investigate and prosecute trafficking offenses in {chapter.name}.")
    for section in SECTIONS:
        _heading(pdf, section, size=11)
        for _ in range(chapter.paragraphs):
            text = NARRATIVE if section == "TRAFFICKING PROFILE" else GOVERNMENT
            _paragraph(pdf, text.format(c=chapter.name, n=number + 3, m=number))


def report_pdf(chapters: list[Chapter], *, year: int = 2019, front_matter: bool = True,
               appendices: bool = True, title: str | None = None) -> bytes:
    """A multi-country report: cover, front matter, one chapter per country, appendices."""
    title = title or f"Trafficking in Persons Report {year}"
    pdf = _Report(f"TRAFFICKING IN PERSONS REPORT JUNE {year}")
    pdf.set_title(title)
    pdf.set_author("U.S. Department of State")
    pdf.add_page()
    _heading(pdf, f"TRAFFICKING IN PERSONS REPORT\nJUNE {year}", size=24)
    if front_matter:
        for heading, text in FRONT_MATTER:
            pdf.add_page()
            _heading(pdf, heading)
            _paragraph(pdf, text)
    for number, chapter in enumerate(chapters, start=1):
        _chapter(pdf, chapter, number)
    if appendices:
        for heading, text in APPENDICES:
            pdf.add_page()
            _heading(pdf, heading)
            _paragraph(pdf, text)
    return bytes(pdf.output())


def country_pdf(chapter: Chapter, *, year: int = 2019) -> bytes:
    """A single-country report, as Refworld republishes one chapter: title page, then the chapter."""
    return report_pdf([chapter], year=year, front_matter=False, appendices=False,
                      title=f"Trafficking in Persons Report {year} - {chapter.name}")


def scanned_pdf(pages: int = 1, typed_cover: bool = False) -> bytes:
    """Pages that are only an image: a scan with no text layer (after a typed cover page, if asked)."""
    from PIL import Image

    pdf = FPDF()
    pdf.set_creation_date(CREATED)
    if typed_cover:
        pdf.add_page()
        _heading(pdf, "TRAFFICKING IN PERSONS REPORT 2003\nScanned from the printed edition by the library", size=14)
    for _ in range(pages):
        pdf.add_page()
        pdf.image(Image.new("L", (200, 260), 235), x=10, y=10, w=190)
    return bytes(pdf.output())


def encrypted_pdf(chapters: list[Chapter], user_password: str = "secret") -> bytes:
    """A report that opens only with a password."""
    pdf = _Report("TRAFFICKING IN PERSONS REPORT")
    pdf.set_encryption(owner_password="owner", user_password=user_password)
    for number, chapter in enumerate(chapters, start=1):
        _chapter(pdf, chapter, number)
    return bytes(pdf.output())


SAMPLE = [
    Chapter("MALI (Tier 2)", "Mali", paragraphs=3),
    Chapter("LAOS (Tier 2 Watch List)", "Laos", paragraphs=6),
    Chapter("THAILAND: TIER 2", "Thailand", paragraphs=2),
    Chapter("BURMA (Tier 3)", "Burma", paragraphs=2),
    Chapter("SPECIAL CASE: SOMALIA", "Somalia", paragraphs=1),
]
