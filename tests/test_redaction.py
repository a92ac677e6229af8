"""Credentials in URLs (a signed URL's token, a service URL's password) never leave the page's own
records: failure records, logs and the CLI show them redacted."""

from __future__ import annotations

import io
import logging

from devtools.services import free_port
from tests.helpers import cli
from workers.records import Failure
from workers.redaction import RedactingFilter, is_redacted, redact_text, redact_url

SIGNED = ("https://bucket.s3.amazonaws.com/report.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256"
          "&X-Amz-Credential=AKIAEXAMPLE%2F20260101&X-Amz-Signature=deadbeef&page=2")


def test_signed_url_credentials_are_redacted_and_the_rest_kept():
    redacted = redact_url(SIGNED)
    assert "deadbeef" not in redacted and "AKIAEXAMPLE" not in redacted
    assert redacted.startswith("https://bucket.s3.amazonaws.com/report.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256&")
    assert redacted.endswith("&page=2") and is_redacted(redacted)
    for url in ("https://cdn.test/a?token=t0k3n", "https://x.test/a?sig=s1g&sv=1", "https://x.test/a?KEY=k3y"):
        assert not any(secret in redact_url(url) for secret in ("t0k3n", "s1g", "k3y")), url
    assert redact_url("https://elastic:pw@es.test:9200/") == "https://***@es.test:9200/"
    plain = "https://www.state.gov/reports/mali/?page=1"
    assert redact_url(plain) == plain and not is_redacted(plain)
    assert redact_url(redact_url(SIGNED)) == redact_url(SIGNED)


def test_failure_records_keep_no_url_credentials():
    record = Failure(SIGNED, "fetch", "http_403", f"{SIGNED}: 403 Forbidden").to_source()
    assert "deadbeef" not in str(record) and "AKIAEXAMPLE" not in str(record)
    assert record["url"] == redact_url(SIGNED)


def test_log_lines_show_signed_urls_redacted():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        logger.warning("%s: attempt %d failed", SIGNED, 2)
    finally:
        logger.removeHandler(handler)
    assert "deadbeef" not in out.getvalue() and "attempt 2 failed" in out.getvalue()
    assert redact_text(f"see {SIGNED} and http://u:p@h.test/") == f"see {redact_url(SIGNED)} and http://***@h.test/"


def test_setup_never_prints_the_elasticsearch_password():
    result = cli({"ELASTICSEARCH_URL": f"http://elastic:s3cret-pass@127.0.0.1:{free_port()}"}, "setup", "--wait", "0",
                 timeout=60)
    assert result.returncode != 0
    assert "s3cret-pass" not in result.stdout + result.stderr, result.stderr
    assert "***@127.0.0.1" in result.stderr

