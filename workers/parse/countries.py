"""Country names as reports write them -> ISO 3166 codes and State Department regions."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import pycountry

# Defined with the document it is part of, which the read-only commands load without this table.
from workers.documents import Country


# The State Department's six regional bureaus, which is how TIP reports group countries.
_REGIONS = {
    "Africa": "AO BF BI BJ BW CD CF CG CI CM CV DJ ER ET GA GH GM GN GQ GW KE KM LR LS MG ML MR MU "
              "MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TZ UG YT ZA ZM ZW",
    "East Asia and Pacific": "AS AU BN CK CN FJ FM GU HK ID JP KH KI KP KR LA MH MM MN MO MP MY NC "
                             "NR NU NZ PF PG PH PN PW SB SG TH TK TL TO TV TW VN VU WF WS",
    "Europe": "AD AL AM AT AX AZ BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GE GG GI GL GR HR HU IE "
              "IM IS IT JE LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM TR UA VA XK",
    "Near East": "AE BH DZ EG EH IL IQ IR JO KW LB LY MA OM PS QA SA SY TN YE",
    "South and Central Asia": "AF BD BT IN IO KG KZ LK MV NP PK TJ TM UZ",
    "Western Hemisphere": "AG AI AR AW BB BL BM BO BQ BR BS BZ CA CL CO CR CU CW DM DO EC FK GD GF "
                          "GP GT GY HN HT JM KN KY LC MF MQ MS MX NI PA PE PM PR PY SR SV SX TC TT "
                          "UM US UY VC VE VG VI",
}
REGION_OF = {code: region for region, codes in _REGIONS.items() for code in codes.split()}

# Display names where ISO's is inverted or formal ("Korea, Republic of").
_DISPLAY = {
    "BO": "Bolivia", "BN": "Brunei", "CD": "Democratic Republic of the Congo",
    "CG": "Republic of the Congo", "FM": "Micronesia", "IR": "Iran", "KP": "North Korea",
    "KR": "South Korea", "LA": "Laos", "MD": "Moldova", "MO": "Macau", "PS": "Palestine",
    "RU": "Russia", "SY": "Syria", "TW": "Taiwan", "TZ": "Tanzania", "VA": "Holy See",
    "VE": "Venezuela", "VN": "Vietnam", "SX": "Sint Maarten", "GB": "United Kingdom",
    "US": "United States",
}
_KOSOVO = ("XK", "XKX", "Kosovo")  # not in ISO 3166 yet; XK is the code everyone uses

# Names reports actually use that ISO does not list (old names, TIP's inverted index forms).
_ALIASES = {
    "burma": "MM", "cote d'ivoire": "CI", "ivory coast": "CI", "korea, north": "KP",
    "north korea": "KP", "dprk": "KP", "korea, south": "KR", "south korea": "KR",
    "republic of korea": "KR", "democratic republic of the congo": "CD",
    "congo, democratic republic of the": "CD", "congo, democratic republic of": "CD",
    "congo (kinshasa)": "CD", "drc": "CD", "dr congo": "CD", "congo-kinshasa": "CD",
    "republic of the congo": "CG", "congo, republic of the": "CG", "congo, republic of": "CG",
    "congo (brazzaville)": "CG", "congo-brazzaville": "CG",
    "macedonia": "MK", "former yugoslav republic of macedonia": "MK",
    "macedonia, former yugoslav republic of": "MK", "swaziland": "SZ", "laos": "LA",
    "russia": "RU", "syria": "SY", "vietnam": "VN", "taiwan": "TW", "hong kong": "HK",
    "macau": "MO", "macao": "MO", "curacao": "CW", "the gambia": "GM", "gambia, the": "GM",
    "the bahamas": "BS", "bahamas, the": "BS", "east timor": "TL", "timor leste": "TL",
    "cape verde": "CV", "czech republic": "CZ", "turkey": "TR", "brunei": "BN",
    "micronesia": "FM", "micronesia, federated states of": "FM", "iran": "IR",
    "moldova": "MD", "tanzania": "TZ", "venezuela": "VE", "bolivia": "BO",
    "united states of america": "US", "usa": "US", "uk": "GB", "great britain": "GB",
    "united kingdom": "GB", "holy see": "VA", "vatican": "VA", "sint maarten": "SX",
    "st. kitts and nevis": "KN", "st. lucia": "LC", "st. vincent and the grenadines": "VC",
    "saint vincent and the grenadines": "VC", "palestine": "PS", "west bank and gaza": "PS",
    "the netherlands": "NL", "the philippines": "PH", "kyrgyz republic": "KG",
    "slovak republic": "SK", "uae": "AE", "emirates": "AE", "kosovo": "XK",
}
# Names in running text that are not (only) countries, or are ambiguous on their own.
_NOT_IN_TEXT = frozenset({"congo", "jersey", "uk", "usa", "drc", "dprk", "uae", "emirates",
                          "vatican", "holy see"})
# "Congo" alone could be either Congo; ISO calls CG just "Congo", reports never do.
_AMBIGUOUS = frozenset({"congo"})
# Demonyms that TIP narratives use for victims and traffickers ("Nigerian women").
_DEMONYMS = {
    "Afghan": "AF", "Albanian": "AL", "Algerian": "DZ", "Bangladeshi": "BD", "Beninese": "BJ",
    "Bolivian": "BO", "Brazilian": "BR", "Bulgarian": "BG", "Burkinabe": "BF", "Burmese": "MM",
    "Cambodian": "KH", "Cameroonian": "CM", "Chinese": "CN", "Colombian": "CO",
    "Cuban": "CU", "Dominican": "DO", "Ecuadorian": "EC", "Egyptian": "EG",
    "Eritrean": "ER", "Ethiopian": "ET", "Filipina": "PH", "Filipino": "PH", "Ghanaian": "GH",
    "Guatemalan": "GT", "Haitian": "HT", "Honduran": "HN", "Indian": "IN", "Indonesian": "ID",
    "Iraqi": "IQ", "Ivoirian": "CI", "Japanese": "JP", "Kenyan": "KE", "Kyrgyz": "KG",
    "Laotian": "LA", "Lao": "LA", "Liberian": "LR", "Malagasy": "MG", "Malaysian": "MY",
    "Malian": "ML", "Mexican": "MX", "Moldovan": "MD", "Mongolian": "MN", "Moroccan": "MA",
    "Nepali": "NP", "Nepalese": "NP", "Nicaraguan": "NI", "Nigerian": "NG", "Nigerien": "NE",
    "North Korean": "KP", "Pakistani": "PK", "Romanian": "RO", "Russian": "RU", "Rwandan": "RW",
    "Salvadoran": "SV", "Senegalese": "SN", "Somali": "SO", "Sri Lankan": "LK", "Sudanese": "SD",
    "Syrian": "SY", "Tajik": "TJ", "Thai": "TH", "Togolese": "TG", "Ugandan": "UG",
    "Ukrainian": "UA", "Uzbek": "UZ", "Venezuelan": "VE", "Vietnamese": "VN", "Yemeni": "YE",
    "Zimbabwean": "ZW",
}


def _key(name: str) -> str:
    """Compare names without accents, case, curly quotes or a leading 'the'."""
    text = unicodedata.normalize("NFKD", name.replace("\u2019", "'").replace("\u2018", "'"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.lower().split()).strip(" .")


@lru_cache(maxsize=None)
def _by_code(iso2: str) -> Country | None:
    if iso2 == _KOSOVO[0]:
        return Country(_KOSOVO[2], _KOSOVO[0], _KOSOVO[1], REGION_OF.get("XK"))
    entry = pycountry.countries.get(alpha_2=iso2)
    if entry is None:
        return None
    name = _DISPLAY.get(iso2) or getattr(entry, "common_name", None) or entry.name
    return Country(name, entry.alpha_2, entry.alpha_3, REGION_OF.get(entry.alpha_2))


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    names: dict[str, str] = {}
    for entry in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            value = getattr(entry, attr, None)
            if value:
                names[_key(value)] = entry.alpha_2
    names.update(_ALIASES)
    return names


def lookup(name: str | None) -> Country | None:
    """Resolve one country name (any common spelling) or return None; never guess."""
    if not name:
        return None
    key = _key(name)
    if key in _AMBIGUOUS:
        return None
    code = _names().get(key)
    if code is None and key.startswith("the "):
        code = _names().get(key[4:])
    return _by_code(code) if code else None


def names_for(country: Country) -> list[str]:
    """Every spelling that refers to this country, as written in running text."""
    return sorted(
        {country.name} | {raw for raw, code in _text_names().items() if code == country.iso2},
        key=len, reverse=True,
    )


@lru_cache(maxsize=1)
def _text_names() -> dict[str, str]:
    """Surface forms to search running text for: proper-cased names, aliases, demonyms."""
    forms: dict[str, str] = {}
    for entry in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            value = getattr(entry, attr, None)
            if (value and value[0].isupper() and "," not in value and "(" not in value
                    and _key(value) not in _NOT_IN_TEXT):
                forms[value] = entry.alpha_2
                ascii_form = _key(value)
                if ascii_form != value.lower():
                    forms[_titlecase(ascii_form)] = entry.alpha_2
    for alias, code in _ALIASES.items():
        if "," not in alias and alias not in _NOT_IN_TEXT and len(alias) > 3:
            forms[_titlecase(alias)] = code
    forms["Cote D'Ivoire"] = forms["Côte d'Ivoire"] = "CI"
    forms["DRC"] = "CD"
    forms.update(_DEMONYMS)
    return forms


def _titlecase(text: str) -> str:
    small = {"of", "the", "and", "da", "de", "du"}
    words = text.split()
    return " ".join(w if (w in small and i) else w[:1].upper() + w[1:] for i, w in enumerate(words))


@lru_cache(maxsize=1)
def _text_pattern() -> re.Pattern[str]:
    forms = sorted(_text_names(), key=len, reverse=True)
    alternation = "|".join(re.escape(f).replace("'", "['\u2019]") for f in forms)
    # Rivers, deltas and lakes share names with countries ("Niger Delta", "Lake Chad").
    # Every form starts with a capital; checking that first spares the alternation at
    # almost every position of the text (the search was the slowest step of a parse).
    return re.compile(
        rf"(?<![\w-])(?<!Lake )(?=[A-Z\u00c0-\u00de])(?:{alternation})(?![\w-]| (?:Delta|River|Basin)\b)")


def find_in_text(text: str) -> list[Country]:
    """Countries named in running text, in order of first mention."""
    seen: dict[str, Country] = {}
    for _, country in mentions(text):
        seen.setdefault(country.iso2, country)
    return list(seen.values())


def mentions(text: str) -> list[tuple[int, Country]]:
    """Every country name in running text with where it ends, in order."""
    found = []
    forms = _text_names()
    for match in _text_pattern().finditer(text):
        code = forms.get(match.group(0).replace("\u2019", "'"))
        if code and (country := _by_code(code)):
            found.append((match.end(), country))
    return found
