"""Facets read from titles and narrative by small, explainable rules.

Every rule is a phrase pattern tied to a sentence, so a facet can always be traced
back to the words that produced it; nothing is inferred from absence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from . import countries
from .countries import Country

TIER_VALUE = (r"(?P<tier>tier\s+(?:1|2|3|i{1,3})(?:\s*[-\u2013]?\s*watch\s*-?\s*list)?"
               r"|(?:tier\s+)?special\s+case)")
_DASH = r"\s*[-\u2013\u2014:]\s*"
# Tier statements TIP pages print as a label, not narrative mentioning a tier. Each form
# captures the country it names, if any: "Mali (Tier 2)", "THAILAND: TIER 2",
# "SPECIAL CASE: YEMEN", a line that is only "Tier 2 Watch List".
_TIER_FORMS = (
    re.compile(rf"(?:^(?P<country>[^()]{{0,60}}?)\s*)?\(\s*{TIER_VALUE}\s*\)", re.I),
    re.compile(rf"^(?P<country>[^:()]{{2,60}}):\s*{TIER_VALUE}\s*$", re.I),
    re.compile(rf"^{TIER_VALUE}\s*:\s*(?P<country>[^:()]{{2,60}})$", re.I),
    re.compile(rf"^(?:tier\s+(?:ranking|placement|rating)\s*:?\s*)?{TIER_VALUE}\s*$", re.I),
)
# Inside a long entry: "tier rating: Tier 3 - Burma does not fully meet the minimum standards".
_TIER_RATING = re.compile(
    rf"\btier\s+(?:rating|ranking|placement)\s*:\s*{TIER_VALUE}(?:{_DASH}"
    r"(?P<country>(?:the\s+)?[A-Z][\w'\u2019 .,-]{1,60}?)\s+(?:does|did|is|was|has|fully)\b)?", re.I)
_MAX_TIER_LINE = 120
# Every tier statement holds one of these words; most lines hold neither.
_TIER_WORD = re.compile(r"tier|special\s+case", re.I)
_ROMAN = {"i": "1", "ii": "2", "iii": "3"}

# Canonical series names and the ways pages write them ("Country Report on ...",
# "TIP Report", "Trafficking in Persons (TIP) Report").
_SERIES_FORMS = {
    "Trafficking in Persons Report":
        r"trafficking\s+in\s+persons\s+(?:\(TIP\)\s+)?report|(?-i:\bTIP\s+[Rr]eport)",
    "Country Reports on Human Rights Practices": r"country\s+reports?\s+on\s+human\s+rights\s+practices",
    "International Religious Freedom Report": r"international\s+religious\s+freedom\s+report",
    "Country Reports on Terrorism": r"country\s+reports?\s+on\s+terrorism",
    "Freedom in the World": r"freedom\s+in\s+the\s+world",
    "Freedom on the Net": r"freedom\s+on\s+the\s+net",
    "Freedom of the Press": r"freedom\s+of\s+the\s+press",
    # Amnesty's annual report is titled "The State of the World's Human Rights 2022/23".
    "Amnesty International Report": r"amnesty\s+international\s+(?:annual\s+)?report|"
                                    r"state\s+of\s+the\s+world['\u2019]s\s+human\s+rights",
    "Global Slavery Index": r"global\s+slavery\s+index",
    "World Report": r"(?<!international )\bworld\s+report",
}
SERIES = tuple(_SERIES_FORMS)
_SERIES = [(name, re.compile(rf"\b(?:{rx})\b", re.I)) for name, rx in _SERIES_FORMS.items()]
_YEAR = re.compile(r"(?<!\d)(19[89]\d|20[0-4]\d)(?!\d)")

# The section whose text the narrative facets are read from, when a report has one.
_PROFILE_HEADING = re.compile(r"trafficking\s+profile", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)]?\s+(?=[\"'\u201c\u2018(]?[A-Z])")
_ROLE_WORD = {"source": "source", "origin": "source", "transit": "transit",
              "destination": "destination"}
ROLES = ("source", "transit", "destination")
_HEDGE = r"(?:possibly|likely|increasingly|primarily|principally|mainly|also|potentially|" \
         r"to\s+a\s+(?:much\s+)?lesser\s+extent|,)"
# "a source, transit, and destination country", "a destination, and possibly a transit country".
_ROLE_LIST = re.compile(
    rf"\b((?:source|transit|destination)(?:\s*,?\s*(?:and|or|and/or)?\s*(?:{_HEDGE}\s*)*"
    r"(?:a\s+|an\s+)?(?:source|transit|destination))*)\s+(?:country|countries|territory|point|hub)\b",
    re.I,
)
# "a country of origin, transit, and destination", "principally a country of destination".
_ROLE_OF = re.compile(
    r"\bcountr(?:y|ies)\s+of\s+((?:origin|source|transit|destination)"
    r"(?:\s*,?\s*(?:and|or)?\s*(?:for\s+)?(?:origin|source|transit|destination))*)\b",
    re.I,
)
_ROLE_TOKEN = re.compile(r"source|origin|transit|destination", re.I)
_SUBJECT_VERB = r"(?:is|was|remains|serves\s+as|has\s+(?:become|been)|continues\s+to\s+be|are)"

EXPLOITATION = {
    "forced_labor": r"forced\s+labou?r|labou?r\s+traffick\w*|involuntary\s+servitude|"
                    r"trafficked\s+for\s+labou?r|labou?r\s+exploitation|forced\s+to\s+work",
    "sex_trafficking": r"sex\s+trafficking|sexual\s+exploitation|forced\s+prostitution|"
                       r"commercial\s+sex|forced\s+into\s+prostitution|sexual\s+(?:servitude|slavery)",
    "domestic_servitude": r"domestic\s+servitude|forced\s+domestic\s+(?:labou?r|work|service)|"
                          r"(?:trafficked|exploited|forced)\b[^.;]{0,60}\bdomestic\s+"
                          r"(?:labou?r|work|service)",
    "child_soldiers": r"child\s+soldiers?|recruitment\s+and\s+use\s+of\s+child(?:ren)?|"
                      r"(?:recruit|use)\w*\s+(?:of\s+)?child(?:ren)?\s+(?:as\s+combatants|in\s+armed)",
    "forced_begging": r"forced\s+begging|forc\w*\s+(?:\w+\s+){0,3}?(?:to|into)\s+[^.;]{0,40}?\bbeg\b|begging",
    "debt_bondage": r"debt\s+bondage|bonded\s+labou?r|debt[- ]based\s+coercion|debt\s+manipulation|"
                    r"debts?\b[^.;]{0,30}\bcoercion",
    "forced_marriage": r"forced\s+marriages?|forced\s+(?:to|into)\s+marr\w*|marriage\s+under\s+duress",
}
_EXPLOITATION = [(name, re.compile(rf"\b(?:{rx})", re.I)) for name, rx in EXPLOITATION.items()]
VICTIM_GROUPS = {
    "children": r"children|child|minors?|boys|girls|adolescents|juveniles",
    "women": r"women|woman|females?",
    "men": r"men|man|males?",
}
_VICTIMS = [(name, re.compile(rf"\b(?:{rx})\b", re.I)) for name, rx in VICTIM_GROUPS.items()]
# Victim words count only in sentences about exploitation, not "the Ministry of Women".
_TRAFFICKING_CONTEXT = re.compile(
    r"traffick|exploit|victim|forced|servitude|prostitut|subjected|bondage|coerc", re.I)
_INSTITUTION = re.compile(r"\b(?:Ministry|Department|Office|Commission|Committee|Council|"
                          r"Bureau|Secretariat|Union)\s+(?:of|for|on)\s+(?:\w+\s+){0,3}?"
                          r"(?:Women|Children|Men)\w*(?:'s)?", re.I)
# "no reports of forced begging", "did not identify child soldiers": not a finding.
_NEGATED = re.compile(r"\b(?:no|not|never|nor|without|neither)\b(?:\W+\w+){0,4}\W*$", re.I)


def tier_statements(lines: Iterable[str]) -> list[tuple[str, str | None]]:
    """(tier, country text or None) for every labelled tier among the lines, in order."""
    found: list[tuple[str, str | None]] = []
    for line in lines:
        if not _TIER_WORD.search(line):
            continue
        line = line.strip()
        if len(line) <= _MAX_TIER_LINE:
            for form in _TIER_FORMS:
                if match := form.search(line):
                    found.append((tier_name(match.group("tier")), _named(match)))
                    break
            else:
                found.extend(_ratings(line))
        else:
            found.extend(_ratings(line))
    return found


def _ratings(line: str) -> list[tuple[str, str | None]]:
    return [(tier_name(m.group("tier")), _named(m)) for m in _TIER_RATING.finditer(line)]


def _named(match: re.Match[str]) -> str | None:
    country = match.groupdict().get("country")
    return country.strip(" :-\u2013\u2014") or None if country else None


def tier_from(lines: Iterable[str]) -> str | None:
    """First labelled tier among title, headings and short lines; None if there is none."""
    return next((tier for tier, _ in tier_statements(lines)), None)


def tier_for(lines: Iterable[str], subject: Country | None) -> str | None:
    """The subject country's tier, only when every tier statement on the page is about it.

    A statement naming another country means the page lists placements (a tier table,
    an interim assessment, a news round-up): no single tier belongs to the page.
    """
    if subject is None:
        return None
    tier = None
    for value, named in tier_statements(lines):
        country = _country_named(named)
        if country is not None and country.iso2 != subject.iso2:
            return None
        tier = tier or value
    return tier


def _country_named(text: str | None) -> Country | None:
    if not text:
        return None
    if country := countries.lookup(text):
        return country
    mentioned = countries.find_in_text(text)
    return mentioned[0] if len(mentioned) == 1 else None


def tier_name(raw: str) -> str:
    words = raw.lower().split()
    if "special" in words:
        return "Special Case"
    number = _ROMAN.get(re.sub(r"[^0-9i]", "", words[1][:3]), words[1][:1])
    if re.search(r"watch", raw, re.I):
        return "Tier 2 Watch List"
    return f"Tier {number}"


def series_from(*texts: str | None) -> str | None:
    for text in texts:
        for name, pattern in _SERIES:
            if text and pattern.search(text):
                return name
    return None


def series_match(text: str) -> re.Match[str] | None:
    """Where the text names a series, if it does (the first series that matches)."""
    return next((m for _, pattern in _SERIES if (m := pattern.search(text))), None)


def series_matches(text: str) -> list[re.Match[str]]:
    """Every place the text names a series."""
    return [m for _, pattern in _SERIES for m in pattern.finditer(text)]


def year_near(text: str, match: re.Match[str]) -> int | None:
    """The year printed next to a series name: "2019 Trafficking in Persons Report",
    "Freedom in the World 2020", "Country Reports on Human Rights Practices for 2022"."""
    year = _YEAR.search(text[max(0, match.start() - 12):match.end() + 10])
    return int(year.group(1)) if year else None


def year_from(*texts: str | None) -> int | None:
    """The report's year as printed in its title or eyebrow (not the publication date)."""
    for text in texts:
        if not text:
            continue
        if (match := series_match(text)) and (near := year_near(text, match)):
            return near
        if year := _YEAR.search(text):
            return int(year.group(1))
    return None


def sentences(text: str) -> list[str]:
    return [s for para in text.split("\n") for s in _SENTENCE_END.split(para) if s.strip()]


def roles_from(sents: list[str], subject: Country | None) -> list[str]:
    """Roles the narrative gives the subject country: 'X is a source and transit country'.

    Without a subject there is no role: "the country is a country of origin" in an
    explainer is about countries in general.
    """
    if subject is None:
        return []
    names = [re.escape(n).replace("'", "['\u2019]") for n in countries.names_for(subject)]
    subject_rx = re.compile(
        rf"\b(?:{'|'.join([*names, 'the country', 'it'])})(?:\s*\([^)]{{1,30}}\))?\s+{_SUBJECT_VERB}\b",
        re.I)
    found: set[str] = set()
    for sentence in sents:
        anchor = subject_rx.search(sentence)
        if anchor is None:
            continue
        rest = sentence[anchor.start():]
        for pattern in (_ROLE_LIST, _ROLE_OF):
            for match in pattern.finditer(rest):
                if not _NEGATED.search(rest[:match.start()][-60:]):
                    found.update(_ROLE_WORD[t.lower()] for t in _ROLE_TOKEN.findall(match.group(1)))
    return [r for r in ROLES if r in found]


def exploitation_from(sents: list[str]) -> list[str]:
    found: set[str] = set()
    for sentence in sents:
        for name, pattern in _EXPLOITATION:
            if name in found:
                continue
            for match in pattern.finditer(sentence):
                if not _NEGATED.search(sentence[max(0, match.start() - 60):match.start()]):
                    found.add(name)
                    break
    return [name for name in EXPLOITATION if name in found]


def victims_from(sents: list[str]) -> list[str]:
    found: set[str] = set()
    for sentence in sents:
        if not _TRAFFICKING_CONTEXT.search(sentence):
            continue
        cleaned = _INSTITUTION.sub(" ", sentence)
        for name, pattern in _VICTIMS:
            if name not in found and pattern.search(cleaned):
                found.add(name)
    return [name for name in VICTIM_GROUPS if name in found]


def related_from(text: str, subject: Country | None) -> list[dict[str, str]]:
    return [{"name": c.name, "iso2": c.iso2} for c in countries.find_in_text(text)
            if subject is None or c.iso2 != subject.iso2]


def narrative_facets(sections: list[dict[str, str]], body: str, subject: Country | None) -> dict[str, list]:
    """A report's facets from its narrative (its trafficking profile section, else its whole text):
    the subject's roles, the kinds of exploitation, the victims, the other countries it names."""
    narrative = next((s["text"] for s in sections if _PROFILE_HEADING.search(s["heading"])), body)
    sents = sentences(narrative)
    return {"trafficking_roles": roles_from(sents, subject), "exploitation_types": exploitation_from(sents),
            "victim_groups": victims_from(sents), "related_countries": related_from(narrative, subject)}
