"""`report-ingest parse FILE --url URL`: the document as JSON, or one line saying why not."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

PAGES = REPO / "tests" / "fixtures" / "pages"


def parse(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workers.cli", "parse", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=60)


def test_prints_the_document():
    entry = json.loads((PAGES / "manifest.json").read_text())[0]
    result = parse(str(PAGES / entry["file"]), "--url", entry["url"], "--content-type", entry["content_type"])
    assert result.returncode == 0, result.stderr
    expected = json.loads((PAGES / entry["file"].replace(".html", ".expected.json")).read_text())
    assert json.loads(result.stdout) == expected


@pytest.mark.parametrize("make_args, reason", [
    (lambda tmp: [str(tmp / "missing.html"), "--url", "https://example.org/x"], "cannot read"),
    (lambda tmp: [str(tmp / "report.pdf"), "--url", "https://example.org/r.pdf", "--content-type",
                  "application/pdf"], "not HTML"),
    (lambda tmp: [str(tmp / "empty.html"), "--url", "https://example.org/e"], "empty"),
])
def test_unreadable_input_fails_with_one_line(tmp_path: Path, make_args, reason):
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4\n%binary")
    (tmp_path / "empty.html").write_bytes(b"")
    result = parse(*make_args(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and reason in lines[0], result.stderr
