import pytest

from workers.parse.publishers import canonical as _publisher


@pytest.mark.parametrize("text", [
    "U.S. Department of State", "US Department of State", "United States Department of State",
    "the U.S. State Department", "Department of State (U.S.)", "  U.S.  Department  of State ",
])
def test_state_department_spellings_are_one_publisher(text):
    assert _publisher(text) == "United States Department of State"


@pytest.mark.parametrize("text, expected", [
    ("Department of State", "Department of State"),  # which country's? not guessed
    ("Freedom House", "Freedom House"),
    ("", None),
    (None, None),
])
def test_other_publishers_kept_as_written(text, expected):
    assert _publisher(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("AI \u2013 Amnesty International (Author)", "Amnesty International"),
    ("USDOS \u2013 US Department of State (Author)", "United States Department of State"),
    ("HRW - Human Rights Watch (Author)", "Human Rights Watch"),
    ("BAMF \u2013 Bundesamt f\u00fcr Migration und Fl\u00fcchtlinge (Autor)",
     "Bundesamt f\u00fcr Migration und Fl\u00fcchtlinge"),
    ("USDOS", "United States Department of State"),
])
def test_catalogue_spellings_are_one_publisher(text, expected):
    assert _publisher(text) == expected
