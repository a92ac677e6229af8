"""The one exception parse_page lets out for input it cannot turn into a document."""


class ParseError(Exception):
    """The page is not a readable report.

    `reason` is a short code for the failure record (`empty_body`, `binary_content`,
    `not_html`, `no_report_text`, ...); the message is the detail for humans.
    """

    def __init__(self, detail: str, reason: str = "parse_error"):
        super().__init__(detail)
        self.reason = reason

    def __reduce__(self):  # crosses from pool processes to the worker pickled
        return (type(self), (str(self), self.reason))
