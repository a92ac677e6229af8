"""The document's language from its text, its stated label, or what the site declares."""

import pytest

from workers.parse import parse_page
from workers.parse.language import code, detect

ENGLISH = ("The Government of Ghana does not fully meet the minimum standards for the elimination of "
           "trafficking but is making significant efforts to do so. The government demonstrated "
           "overall increasing efforts compared with the previous reporting period, and it was upgraded.")
GERMAN = ("Am 24.2.21 wurden in Kabul bei der Explosion einer Haftbombe zwei Personen get\u00f6tet. Am "
          "selben Tag wurde ein Mitarbeiter des Gesundheitsministeriums auf dem Weg zur Arbeit "
          "erschossen. Zu den Anschl\u00e4gen hat sich bislang niemand bekannt, und die Polizei ermittelt.")


def test_detects_language_of_running_text_and_declines_short_text():
    assert detect(ENGLISH) == "en"
    assert detect(GERMAN) == "de"
    assert detect("Ghana: Tier 2") is None


@pytest.mark.parametrize("raw, expected", [
    ("en-GB", "en"), ("eng", "en"), ("English", "en"), ("Englisch", "en"), ("Deutsch", "de"),
    ("zz-top", None), ("", None), (None, None),
])
def test_language_codes_and_names(raw, expected):
    assert code(raw) == expected


def test_english_text_on_a_german_interface_is_english():
    page = f"<html lang='de'><body><h1>Bericht</h1><p>{ENGLISH}</p></body></html>".encode()
    assert parse_page(page, "https://www.ecoi.net/de/dokument/1.html").language == "en"
    short = b"<html lang='de'><body><h1>Bericht</h1><p>Ghana: Tier 2 und mehr Text hier.</p></body></html>"
    assert parse_page(short, "https://www.ecoi.net/de/dokument/2.html").language == "de"
