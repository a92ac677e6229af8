"""Facet rules, each on sentences taken from (or closely paraphrasing) real TIP reports."""

from __future__ import annotations

import pytest

from workers.parse import countries, facets


def roles(sentence: str, country: str) -> list[str]:
    return facets.roles_from(facets.sentences(sentence), countries.lookup(country))


@pytest.mark.parametrize(
    ("sentence", "country", "expected"),
    [
        ("Mali is primarily a source country for children trafficked for labor. To a lesser "
         "extent, Mali is a transit country for trafficking between Senegal and Cote D'Ivoire, "
         "and a destination country for Nigerian women.", "Mali",
         ["source", "transit", "destination"]),
        ("Russia is a source, transit, and destination country for men, women, and children.",
         "Russia", ["source", "transit", "destination"]),
        ("As reported over the past five years, Qatar is principally a country of destination "
         "for men and women subjected to forced labor.", "Qatar", ["destination"]),
        ("The Democratic Republic of the Congo (DRC) is a source, destination, and possibly a "
         "transit country for men, women, and children.", "Congo, Democratic Republic of the",
         ["source", "transit", "destination"]),
        ("Hong Kong is primarily a destination, transit, and to a much lesser extent, a source "
         "territory for men, women, and children.", "Hong Kong",
         ["source", "transit", "destination"]),
        ("Côte d\u2019Ivoire is a source, transit, and destination country for women and children.",
         "Cote d'Ivoire", ["source", "transit", "destination"]),
        ("Laos is a country of origin and transit for women trafficked to Thailand.", "Laos",
         ["source", "transit"]),
    ],
)
def test_roles_of_the_subject_country(sentence: str, country: str, expected: list[str]) -> None:
    assert roles(sentence, country) == expected


@pytest.mark.parametrize(
    ("sentence", "country"),
    [
        # Another country's role is not the subject's.
        ("Thai women are trafficked to Japan, a major destination country.", "Thailand"),
        # Post-2017 reports dropped role language; nothing may be inferred.
        ("As reported over the past five years, human traffickers exploit domestic and foreign "
         "victims in Thailand.", "Thailand"),
        ("Burma is not a destination country for trafficking victims.", "Burma"),
    ],
)
def test_no_role_without_a_statement_about_the_subject(sentence: str, country: str) -> None:
    assert roles(sentence, country) == []


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Children are trafficked for labor in conditions comparable to involuntary servitude.",
         ["forced_labor"]),
        ("Labor traffickers exploit migrant workers in commercial fishing.", ["forced_labor"]),
        ("Nigerian women trafficked for purposes of sexual exploitation.", ["sex_trafficking"]),
        ("ISIS continued to force Yezidi women and girls into sexual slavery.", ["sex_trafficking"]),
        ("Girls are trafficked internally for domestic servitude.", ["domestic_servitude"]),
        ("Some are trafficked internally to urban centers for menial jobs or domestic labor.",
         ["domestic_servitude"]),
        ("The army unlawfully conscripts child soldiers.", ["child_soldiers"]),
        ("The recruitment and use of children by armed groups increased in 2009.",
         ["child_soldiers"]),
        ("Some Quranic teachers force boys to beg in Banjul.", ["forced_begging"]),
        ("Children from Cambodia are forced to sell flowers, beg, or work in the service sector.",
         ["forced_begging"]),
        ("Some are subjected to debt bondage by recruitment agencies.", ["debt_bondage"]),
        ("Substantial debts are used as tools of coercion.", ["debt_bondage"]),
        ("Women and girls are subjected to forced marriage in China.", ["forced_marriage"]),
        ("North Korean women who cross into China are forced into marriage.", ["forced_marriage"]),
        ("There were no reports of child soldiers.", []),
        ("The government did not identify any victims of forced begging.", []),
    ],
)
def test_exploitation_types(sentence: str, expected: list[str]) -> None:
    assert facets.exploitation_from(facets.sentences(sentence)) == expected


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Thailand is a source country for men, women, and children subjected to forced labor.",
         ["children", "women", "men"]),
        ("Some Swazi women are forced into prostitution in South Africa.", ["women"]),
        ("Within The Gambia, women, girls, and, to a lesser extent, boys are subjected to sex "
         "trafficking.", ["children", "women"]),
        # Institutions named after a group are not victims.
        ("The Ministry of Women's Affairs coordinated trafficking prevention.", []),
        # Without an exploitation context a group mention is not a victim group.
        ("Women migrating for domestic work remained at particular risk of abuse.", []),
    ],
)
def test_victim_groups(sentence: str, expected: list[str]) -> None:
    assert facets.victims_from(facets.sentences(sentence)) == expected


@pytest.mark.parametrize(
    ("line", "tier"),
    [
        ("Mali (Tier 2)", "Tier 2"),
        ("THAILAND: TIER 2", "Tier 2"),
        ("(Tier 2 Watch List)", "Tier 2 Watch List"),
        ("UKRAINE (Tier 2 Watchlist)", "Tier 2 Watch List"),
        ("BURMA: TIER 3", "Tier 3"),
        ("TAIWAN: TIER 1", "Tier 1"),
        ("SOMALIA (Special Case)", "Special Case"),
        ("SYRIA: SPECIAL CASE", "Special Case"),
        ("Tier 2 Watch List", "Tier 2 Watch List"),
        ("Thailand was downgraded to Tier 2 Watch List", None),
        ("Syria remains a Special Case for the 10th consecutive year.", None),
    ],
)
def test_tier_forms(line: str, tier: str | None) -> None:
    assert facets.tier_from([line]) == tier


@pytest.mark.parametrize(
    ("title", "series", "year"),
    [
        ("U.S. Department of State 2002 Trafficking in Persons Report - Mali",
         "Trafficking in Persons Report", 2002),
        ("Trafficking in Persons Report 2010 - Congo, Democratic Republic of the",
         "Trafficking in Persons Report", 2010),
        ("Freedom in the World 2020 - Hungary", "Freedom in the World", 2020),
        ("Country Reports on Human Rights Practices - Laos",
         "Country Reports on Human Rights Practices", None),
        ("Notes on labour migration", None, None),
    ],
)
def test_series_and_year_from_title(title: str, series: str | None, year: int | None) -> None:
    assert facets.series_from(title) == series
    assert facets.year_from(title) == year


def test_related_countries_exclude_subject_and_follow_first_mention() -> None:
    text = ("Mali is a transit country for trafficking between Senegal and Cote D'Ivoire, and a "
            "destination country for Nigerian women. Children return from Cote D'Ivoire.")
    assert facets.related_from(text, countries.lookup("Mali")) == [
        {"name": "Senegal", "iso2": "SN"}, {"name": "Côte d'Ivoire", "iso2": "CI"},
        {"name": "Nigeria", "iso2": "NG"}]


@pytest.mark.parametrize(
    ("line", "tier"),
    [
        ("SPECIAL CASE: YEMEN", "Special Case"),
        ("SOMALIA: Tier Special Case", "Special Case"),
        ("GHANA (Tier 1)", "Tier 1"),
        ("current situation: Burma is a source country for men, women, and children subjected to "
         "forced labor; tier rating: Tier 3 \u2014 Burma does not fully meet the minimum standards "
         "for the elimination of trafficking", "Tier 3"),
        ("Ghana has been placed on Tier 1 of the annual report", None),
    ],
)
def test_tier_wordings(line: str, tier: str | None) -> None:
    assert facets.tier_from([line]) == tier


@pytest.mark.parametrize(
    ("lines", "country", "tier"),
    [
        (["GHANA: Tier 2", "The Government of Ghana does not fully meet the standards."], "Ghana", "Tier 2"),
        (["Tier 2 Watch List"], "Nepal", "Tier 2 Watch List"),
        # A statement about another country: the page lists placements.
        (["Angola (Tier 2 Watch List)", "Belarus (Tier 2 Watch List)"], "Angola", None),
        (["Kazakhstan (Tier 2)"], "Ghana", None),
        # No subject country, no tier: explainers and tier tables.
        (["TIER 1", "Countries whose governments fully meet the minimum standards."], None, None),
    ],
)
def test_tier_only_for_statements_about_the_subject(lines: list[str], country: str | None,
                                                   tier: str | None) -> None:
    assert facets.tier_for(lines, countries.lookup(country)) == tier


def test_no_roles_without_a_subject_country() -> None:
    sentence = "Whether the country is a country of origin, transit, or destination does not matter."
    assert facets.roles_from(facets.sentences(sentence), None) == []


@pytest.mark.parametrize(
    ("text", "series", "year"),
    [
        ("Country Report on Human Rights Practices 2016 - Nepal",
         "Country Reports on Human Rights Practices", 2016),
        ("The 2023 TIP Report is out", "Trafficking in Persons Report", 2023),
        ("Trafficking in Persons (TIP) Report 2019: Ghana", "Trafficking in Persons Report", 2019),
        ("Below is the Ghana chapter as reported in the 2021 TIP Report.", "Trafficking in Persons Report", 2021),
        ("World Report 2020 - Nepal", "World Report", 2020),
        ("Amnesty International Report 2020/21; The State of the World's Human Rights; Ghana 2020",
         "Amnesty International Report", 2020),
        ("Tips for reporting on trafficking", None, None),
    ],
)
def test_series_as_people_write_them(text: str, series: str | None, year: int | None) -> None:
    assert facets.series_from(text) == series
    assert facets.year_from(text) == year
