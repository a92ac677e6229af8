"""Any site: meta tags, label/value metadata in several languages, CMS dates, bylines.

The hand-written rules here were compared with trafilatura + htmldate on the fixture
pages (benchmarks/extraction.py --trafilatura, figures in docs/extraction.md); they
were as accurate or more on every field, so no field is taken from those libraries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bs4 import Tag

from .article import main_text, vote
from .base import Extract, first_heading, report_blocks, strip_site_name
from .content import Block
from .dates import parse_date
from .prose import series_lines
from .labels import Labelled, find_labelled
from .publishers import site_name
from .tree import Page, norm, previous_element, spaced_text, text_of

_PUBLISHED = ("article:published_time", "datepublished", "citation_publication_date",
              "dc.date.issued", "dcterms.issued", "dc.date", "date", "pubdate", "publish-date")
_MODIFIED = ("article:modified_time", "og:updated_time", "datemodified", "dcterms.modified",
             "last-modified")
# Metadata labels as mirrors, catalogues and CMSs print them (English, German, French, Spanish).
_LABELS = {
    **dict.fromkeys(("source", "quelle", "publisher", "herausgeber", "éditeur", "editeur",
                     "published by", "fuente"), "publisher"),
    **dict.fromkeys(("published", "publication date", "date of publication", "veröffentlicht",
                     "veröffentlicht am", "publiziert", "erscheinungsdatum", "publié le",
                     "date de publication", "fecha de publicación", "publicado"), "publication_date"),
    **dict.fromkeys(("author", "authors", "autor", "autorin", "auteur", "written by"), "author"),
    **dict.fromkeys(("last updated", "page last updated", "updated", "zuletzt aktualisiert",
                     "aktualisiert", "mis à jour le", "dernière mise à jour"), "last_updated"),
    **dict.fromkeys(("language", "sprache", "langue", "idioma"), "language"),
    **dict.fromkeys(("country", "countries", "land", "länder", "herkunftsland", "pays"), "countries"),
    **dict.fromkeys(("document type", "dokumentart", "type de document"), "document_type"),
    # Catalogue furniture: read only so that it leaves the body.
    **dict.fromkeys(("original link", "originallink", "lien original"), "original_link"),
    **dict.fromkeys(("available on ecoi.net since", "verfügbar auf ecoi.net seit"), "available_since"),
    **dict.fromkeys(("document id", "dokument id", "document #", "dokument #"), "document_id"),
}
_BYLINE = re.compile(r"^\s*by\s+(?P<who>[^,|\d][^|]{1,80}?)\s*(?:[,|\u2013-]\s*.*)?$", re.I)
_TITLE_SPLIT = re.compile(r"\s+(?:[-\u2013\u2014|:])\s+|:\s+")
# Visible post dates of blogs and CMSs, by the class names their themes use.
_DATE_CLASS = re.compile(r"(?:^|\s)(?:entry-date|post-date|posted-on|published|pubdate|article-date|"
                         r"story-date|date-published)(?:\s|$)")
# hCard names and bylines: <span class="author vcard"><a class="url fn n">, class="byline".
_AUTHOR_CLASS = re.compile(r"byline|author")
# WordPress themes print "By <name> | <date> | Topics: ..." in the post's meta line.
_POST_META_CLASS = re.compile(r"(?:^|\s)(?:entry|post)-meta(?:\s|$)")
_NAME_CLASS = re.compile(r"(?:^|\s)fn(?:\s|$)")
_CARD_CLASS = re.compile(r"vcard|author")
_AUTHOR_REL = re.compile(r"(?:^|\s)author(?:\s|$)")
# "Posted on March 3, 2021", "Publié le 3 mars 2021", "Veröffentlicht am 3. März 2021".
_POSTED = re.compile(r"^\s*(?:posted|published)\s+on\b|^\s*publié\s+le\b|^\s*veröffentlicht\s+am\b",
                     re.I)
_POSTED_BY = re.compile(r"\bby\s+(?P<who>[A-Z][\w.'\u2019-]*(?:\s+[A-Z][\w.'\u2019-]*){0,3})")
_MAX_POSTED_LINE = 120
_MAX_EYEBROW = 120
# "WASHINGTON, June 24, 2021 —", "ACCRA, Ghana, 24 June 2021 –": a place in capitals, a date, a dash.
_DATELINE = re.compile(r"^[A-Z][A-Z.'\- ]{1,40}(?:,\s*[A-Z][\w.' -]{1,30}?)?,\s*"
                       r"(?P<date>[A-Z][a-z]{2,8}\.?\s+\d{1,2},?\s+\d{4}|\d{1,2}\s+[A-Z][a-z]{2,8}\.?\s+\d{4})"
                       r"\s*(?:[\u2014\u2013-]|--)")
_DATELINE_BLOCKS = 2
# "Tuesday, June 24, 2021": a line this short holding a date is the date of the text.
_MAX_DATE_LINE = 32
_PERSON = re.compile(r"^[A-Z][\w.'\u2019-]*(?:\s+[A-Z][\w.'\u2019-]*){0,4}$")
_BY_PREFIX = re.compile(r"^(?:posted\s+by|written\s+by|by|author|von|par)\s*:?\s+", re.I)


class GenericParser:
    name = "generic"

    def extract(self, page: Page, forced: bool) -> Extract:
        heading = first_heading(page, "h1")
        # The line over the headline often names the series: "Global Slavery Index 2023".
        above = previous_element(heading) if heading is not None else None
        eyebrow = spaced_text(above) if above is not None and len(spaced_text(above)) <= _MAX_EYEBROW else None
        site = page.first_meta("og:site_name")
        title = page.first_meta("og:title") or text_of(heading) or strip_site_name(
            text_of(page.first("title")), site)
        labelled = find_labelled(page, _LABELS)
        posted = _post_date(page)
        published = (parse_date(page.first_meta(*_PUBLISHED))
                     or parse_date(_value(labelled, "publication_date")) or posted.date)
        author = page.first_meta("author", "article:author", "dc.creator", "citation_author")
        if author and author.startswith("http"):
            author = None
        byline = _byline(page)
        if author is None:
            author = _value(labelled, "author") or (byline[0] if byline else None) or posted.author
        if published is None and byline:
            published = byline[1]
        own_name = page.first_meta("application-name") or site_name(page)
        publisher = _value(labelled, "publisher") or site or own_name
        page.remove([*(el for pair in labelled.values() for el in pair.elements), *posted.lines])
        countries = labelled["countries"].values if "countries" in labelled else []
        blocks = vote(report_blocks(page), main_text(page.html, page.url))
        return Extract(
            title=strip_site_name(title, site, own_name),
            publisher=publisher,
            author=author,
            publication_date=published or _dateline(blocks),
            last_updated=parse_date(page.first_meta(*_MODIFIED)) or parse_date(
                _value(labelled, "last_updated")),
            country_names=[*(p for p in _TITLE_SPLIT.split(title or "") if p), *countries],
            series_texts=[t for t in (title, text_of(page.first("title")), eyebrow) if t] + series_lines(blocks),
            language=_value(labelled, "language"),
            blocks=blocks,
        )


def _dateline(blocks: list[Block]) -> str | None:
    """The date of a press release or wire story's dateline ("WASHINGTON, June 24, 2021 —"),
    or a line at the top of the text that is only a date ("June 24, 2021")."""
    for block in blocks[:_DATELINE_BLOCKS]:
        if block.heading:
            continue
        if match := _DATELINE.match(block.text):
            return parse_date(match.group("date"))
        if len(block.text) <= _MAX_DATE_LINE and (when := parse_date(block.text)):
            return when
    return None


def _value(labelled: dict[str, Labelled], field: str) -> str | None:
    return labelled[field].value if field in labelled else None


@dataclass
class _Posted:
    date: str | None = None
    author: str | None = None
    # A "Posted on <date> by <name>" line inside the article: metadata, not report text.
    lines: list[Tag] = field(default_factory=list)


def _post_date(page: Page) -> _Posted:
    """A visible post date: a date-classed element, <time>, or a "Posted on ..." line."""
    for el in page.with_attr("class", _DATE_CLASS):
        if when := parse_date(el.get("datetime") or text_of(el)):
            return _Posted(when)
    time_el = next((t for t in page.tags("time") if t.get("datetime") or text_of(t)), None)
    if time_el is not None and (when := parse_date(time_el.get("datetime") or text_of(time_el))):
        return _Posted(when)
    for line in page.strings(_POSTED):
        holder = line.parent
        # The date may sit in the next element: <span>Posted on </span><a><time>...</time></a>.
        for _ in range(3):
            if holder is None:
                break
            text = text_of(holder)
            if when := parse_date(text):
                by = _POSTED_BY.search(text)
                short = len(text) <= _MAX_POSTED_LINE
                return _Posted(when, by.group("who") if by else None, [holder] if short else [])
            holder = holder.parent
    return _Posted()


def _byline(page: Page) -> tuple[str | None, str | None] | None:
    """'By Jane Doe, 12 March 2021' in an element whose name says byline or author."""
    for el in _author_elements(page):
        text = text_of(el)
        if not text or len(text) > 160:
            continue
        match = _BYLINE.match(text)
        who = norm(match.group("who")) if match else None
        if who is None and _PERSON.match(name := _BY_PREFIX.sub("", text)) and len(name) <= 60:
            who = name
        return who, parse_date(text)
    return None


def _author_elements(page: Page) -> list[Tag]:
    """rel=author links, hCard names, then anything classed as byline or author."""
    cards = [el for el in page.with_attr("class", _NAME_CLASS)
             if any(_CARD_CLASS.search(p.attrs.get("class") or "") for p in el.parents)]
    return [*page.with_attr("rel", _AUTHOR_REL), *cards, *page.with_attr("class", _AUTHOR_CLASS),
            *(el for el in page.with_attr("class", _POST_META_CLASS) if _BYLINE.match(text_of(el)))]
