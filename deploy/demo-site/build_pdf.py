"""Write deploy/demo-site/pdf/tip-2019-sample.pdf, the demo site's multi-country PDF report.

    .venv/bin/python deploy/demo-site/build_pdf.py

A small full report made by tests/pdfs.py (fpdf2, a test dependency): a cover, front matter,
five country chapters (Tier 2, Tier 2 Watch List over three pages, "THAILAND: TIER 2",
Tier 3, "SPECIAL CASE: SOMALIA") and two appendices. Dates are fixed, so with the same fpdf2
version every run writes the same bytes. tests/test_parse_pdf.py checks what the committed
file parses into.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.pdfs import SAMPLE, report_pdf  # noqa: E402

OUTPUT = Path(__file__).with_name("pdf") / "tip-2019-sample.pdf"

if __name__ == "__main__":
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_bytes(report_pdf(SAMPLE))
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")
