"""The one exception parse_page lets out for input it cannot turn into a document."""


class ParseError(Exception):
    """The page is not a readable report; the message is a short reason for humans."""
