"""Country names as reports write them -> ISO codes and State Department regions."""

from __future__ import annotations

import pytest

from workers.parse import countries


@pytest.mark.parametrize(
    ("name", "iso2", "region"),
    [
        ("Burma", "MM", "East Asia and Pacific"),
        ("Cote D'Ivoire", "CI", "Africa"),
        ("Côte d\u2019Ivoire", "CI", "Africa"),
        ("Korea, North", "KP", "East Asia and Pacific"),
        ("Korea, Democratic People's Republic of", "KP", "East Asia and Pacific"),
        ("Korea, South", "KR", "East Asia and Pacific"),
        ("Democratic Republic of the Congo", "CD", "Africa"),
        ("Congo, Democratic Republic of the", "CD", "Africa"),
        ("Republic of the Congo", "CG", "Africa"),
        ("Congo, Republic of the", "CG", "Africa"),
        ("Macedonia", "MK", "Europe"),
        ("Swaziland", "SZ", "Africa"),
        ("Laos", "LA", "East Asia and Pacific"),
        ("Russia", "RU", "Europe"),
        ("Syria", "SY", "Near East"),
        ("Vietnam", "VN", "East Asia and Pacific"),
        ("Taiwan", "TW", "East Asia and Pacific"),
        ("Kosovo", "XK", "Europe"),
        ("Hong Kong", "HK", "East Asia and Pacific"),
        ("Macau", "MO", "East Asia and Pacific"),
        ("Curaçao", "CW", "Western Hemisphere"),
        ("Curacao", "CW", "Western Hemisphere"),
        ("The Gambia", "GM", "Africa"),
        ("Timor-Leste", "TL", "East Asia and Pacific"),
        ("Afghanistan", "AF", "South and Central Asia"),
        ("United States", "US", "Western Hemisphere"),
    ],
)
def test_lookup_normalises_report_spellings(name: str, iso2: str, region: str) -> None:
    country = countries.lookup(name)
    assert country is not None and country.iso2 == iso2 and country.region == region


@pytest.mark.parametrize("name", ["Congo", "Atlantis", "", "Trafficking in Persons Report"])
def test_ambiguous_or_unknown_names_are_not_guessed(name: str) -> None:
    assert countries.lookup(name) is None


def test_every_region_string_is_one_of_the_six() -> None:
    assert set(countries.REGION_OF.values()) == {
        "Africa", "East Asia and Pacific", "Europe", "Near East", "South and Central Asia",
        "Western Hemisphere"}


def test_text_search_prefers_longest_name_and_skips_rivers() -> None:
    found = countries.find_in_text(
        "Boys from Guinea-Bissau and Equatorial Guinea work in the Niger Delta and "
        "the Democratic Republic of the Congo; Burmese men fish near Papua New Guinea.")
    assert [c.iso2 for c in found] == ["GW", "GQ", "CD", "MM", "PG"]


def _subject(title, blocks=(), named=()):
    from workers.parse.content import Block
    from workers.parse.subject import subject_country

    found = subject_country(list(named), title, [Block(t, heading=h) for t, h in blocks])
    return found.iso2 if found else None


def test_subject_country_from_the_pages_own_words():
    assert _subject("Nepal Country Profile 2016") == "NP"
    assert _subject("US upgrades Ghana to Tier 1 in human trafficking report") == "GH"
    assert _subject("Report", [("GHANA (Tier 1)", True)]) == "GH"
    lead = "Ghana has been placed on Tier 1 of the annual Trafficking in Persons report this week."
    assert _subject("Good news", [(lead, False)]) == "GH"
    # A site-named country wins over the words of the title.
    assert _subject("Thailand and Cambodia", named=["Laos"]) == "LA"


def test_pages_about_several_countries_have_no_subject():
    assert _subject("Thailand and Cambodia sign a labour agreement") is None
    entries = [("Angola (Tier 2 Watch List)", True), ("Some text about Angola.", False),
               ("Belarus (Tier 2 Watch List)", True)]
    assert _subject("Interim Assessment", entries) is None
    assert _subject("Trafficking in persons", [("Afghanistan", True), ("Albania", True)]) is None
