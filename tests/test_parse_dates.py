"""Dates as pages in several languages write them."""

import pytest

from workers.parse.dates import parse_date


@pytest.mark.parametrize("text, expected", [
    ("3. M\u00e4rz 2021", "2021-03-03"),
    ("Ver\u00f6ffentlicht: 1. Juli 2021", "2021-07-01"),
    ("3 mars 2021", "2021-03-03"),
    ("Publi\u00e9 le 1er ao\u00fbt 2020", "2020-08-01"),
    ("3 de marzo de 2021", "2021-03-03"),
    ("20.06.2014", "2014-06-20"),
    ("Page last updated: Thursday, May 16, 2024", "2024-05-16"),
    ("Report June 30, 2016", "2016-06-30"),
    ("5 June 2002", "2002-06-05"),
    ("31 June 2019", None),
    ("3 Marsh 2021", None),
])
def test_dates_in_several_languages(text, expected):
    assert parse_date(text) == expected
