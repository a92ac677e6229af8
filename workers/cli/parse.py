"""`report-ingest parse`: one saved page through the parser, no services needed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from workers.cli.errors import fail
from workers.parse import ParseError, parse_page


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--url", required=True, help="The URL the page was served from.")
@click.option("--content-type", default=None, help="The HTTP Content-Type, if known.")
def parse(file: Path, url: str, content_type: str | None) -> None:
    """Parse one saved page and print its document as JSON."""
    try:
        body = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    try:
        document = parse_page(body, url, content_type)
    except ParseError as exc:
        fail(str(exc))
    click.echo(json.dumps(document.to_source(), indent=2, ensure_ascii=False))
