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
