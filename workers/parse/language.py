"""The language a document is written in, read from its text.

Pages declare the language of their site, not of each document: ecoi.net's German
interface serves English reports under lang="de", and small sites keep one lang
attribute for every section. Function words identify a language reliably on a few
dozen words; shorter texts fall back to what the page declares.
"""

from __future__ import annotations

import re
from collections import Counter

import pycountry

_FUNCTION_WORDS = {
    "en": "the of and to in is that for was with as by on are were from which this has have it not be",
    "de": "der die und das ist nicht ein eine zu den von mit sich des auf für im dem wurde werden "
          "auch als bei",
    "fr": "le la les des et est une un du dans pour que qui sur par au pas sont avec ont été aux",
    "es": "el la los las de y en que por con para una del se es al fue son como su",
    "pt": "o os as de e em que para com uma do da dos das por foi são não",
    "it": "il lo gli le di e che della per con una del sono non è nel alla",
    "nl": "de het een en van is dat op te zijn met voor niet aan er werd",
    "ru": "и в не на что с по из как это для от был к",
}
# word -> languages it is a function word of ("de" is Dutch, "la" French and Spanish).
_LANGUAGES_OF: dict[str, tuple[str, ...]] = {}
for _lang, _words in _FUNCTION_WORDS.items():
    for _word in _words.split():
        _LANGUAGES_OF[_word] = (*_LANGUAGES_OF.get(_word, ()), _lang)
_TOKEN = re.compile(r"[^\W\d_]+")
_MIN_WORDS = 30
# A few hundred words decide it; counting a whole report would only cost time.
_SAMPLE_CHARS = 4000
# The winning language needs this share of all words and twice the runner-up's hits.
_MIN_SHARE = 0.12
# Names of languages as catalogues print them ("Language: English", "Sprache: Englisch").
_NAMES = {"englisch": "en", "deutsch": "de", "französisch": "fr", "franzosisch": "fr",
          "spanisch": "es", "russisch": "ru", "arabisch": "ar", "portugiesisch": "pt",
          "italienisch": "it", "anglais": "en", "allemand": "de", "français": "fr",
          "espagnol": "es", "inglés": "en", "francés": "fr"}


def detect(text: str) -> str | None:
    """ISO 639-1 code of the text's language, or None when the text says too little."""
    tokens = _TOKEN.findall(text[:_SAMPLE_CHARS].lower())
    if len(tokens) < _MIN_WORDS:
        return None
    hits = Counter({lang: 0 for lang in _FUNCTION_WORDS})
    for token in tokens:
        for lang in _LANGUAGES_OF.get(token, ()):
            hits[lang] += 1
    (best, top), (_, second) = hits.most_common(2)
    if top >= _MIN_SHARE * len(tokens) and top >= 2 * second:
        return best
    return None


def code(raw: str | None) -> str | None:
    """'en-GB', 'eng', 'English' or 'Englisch' -> 'en'; None for anything else."""
    if not raw:
        return None
    text = raw.strip().lower()
    if text in _NAMES:
        return _NAMES[text]
    primary = re.split(r"[-_,;\s]", text, maxsplit=1)[0]
    if len(primary) == 2 and primary.isalpha():
        return primary if pycountry.languages.get(alpha_2=primary) else None
    if len(primary) == 3 and primary.isalpha():
        return getattr(pycountry.languages.get(alpha_3=primary), "alpha_2", None)
    named = pycountry.languages.get(name=text.capitalize())
    return getattr(named, "alpha_2", None)
