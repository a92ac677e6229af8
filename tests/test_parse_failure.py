"""One classification of a page the parser could not read, for the fetch task and the rebuild alike."""

from workers.parse import ParseError, parse_failure


def test_a_parse_error_keeps_its_own_reason():
    assert parse_failure(ParseError("no report text found", "no_report_text"), "https://example.org/a") == \
        ("no_report_text", "no report text found")


def test_any_other_exception_is_a_parser_crash_named_by_its_class(caplog):
    assert parse_failure(KeyError("title"), "https://example.org/a") == ("parser_crash", "KeyError: 'title'")
    assert "parser crashed on https://example.org/a" in caplog.text
