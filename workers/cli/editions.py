"""`report-ingest history`, `diff` and `tiers`: one country's report across editions, and every
country's tiers across years. Read-only, through the small client (workers/es_read.py); the logic
is in workers/editions/, each command importing the part it uses."""

from __future__ import annotations

import json

import click

from workers.cli.context import reader_and_names
from workers.cli.errors import fail
from workers.cli.style import Style

CONFLICT = "copies disagree"


def _json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.command()
@click.argument("country")
@click.option("--series", help='Only this series ("Trafficking in Persons Report").')
@click.option("--json", "as_json", is_flag=True, help="Print the editions as JSON.")
def history(country: str, series: str | None, as_json: bool) -> None:
    """One row per edition of COUNTRY's report (a name or an ISO code), oldest first: year, tier,
    its move against the previous edition, the best copy's URL, copies and conflicts."""
    from workers.editions.read import history as read_history
    from workers.settings import get_settings

    es, names = reader_and_names()
    try:
        found = read_history(es, names, country, series, kept=get_settings().revisions_kept)
    except LookupError as exc:
        fail(str(exc))
    if as_json:
        _json([edition.row() for edition in found])
        return
    if not found:
        click.echo(f"no editions of {country}" + (f" in {series}" if series else ""))
        return
    style = Style.for_stdout()
    click.echo(f"{found[0].country.name} ({found[0].country.iso2})")
    for edition in found:
        row = edition.row()
        mark = f"  ! {CONFLICT}" if row["conflict"] else ""
        tier = style.strong(f"{row['tier'] or '-':<20}")  # padded before styling: escapes have no width
        click.echo(f"{row['year']}  {row['series']}  {tier} {row['move']:<8}"
                   f"{row['copies']} cop{'y' if row['copies'] == 1 else 'ies'}{mark}\n      {row['url']}")
        if edition.revisions:
            click.echo("      earlier versions fetched: " + ", ".join(edition.revisions))


def _print_diff(result: dict, style: Style) -> None:
    from workers.editions.diff import word_diff

    old, new = result["from"], result["to"]
    if "url" in result:  # two versions of one page
        click.echo(f"{result['url']}: fetched {old['fetched_at']} -> {new['fetched_at']}")
    else:
        click.echo(f"{result['country']} {result['series']}: {old['year']} -> {new['year']}")
    click.echo(f"tier: {old['tier'] or '-'} -> {new['tier'] or '-'} ({result['tier_move']})")
    if "url" not in result:
        click.echo(f"  {old['url']}\n  {new['url']}")
    for section in result["sections"]:
        counts = (f"{len(section['added'])} added, {len(section['removed'])} removed, "
                  f"{len(section['changed'])} changed, {section['unchanged']} unchanged")
        click.echo(f"\n{style.strong(section['heading'] or '(untitled)')}  [{counts}]")
        for text in section["removed"]:
            click.echo("  - " + style.red(text))
        for text in section["added"]:
            click.echo("  + " + style.green(text))
        for pair in section["changed"]:
            click.echo("  ~ " + style.word_diff(word_diff(pair["from"], pair["to"])))


@click.command()
@click.argument("country")
@click.argument("years", nargs=-1, type=int)
@click.option("--series", help="The series, when the country has several for these years.")
@click.option("--json", "as_json", is_flag=True, help="Print the difference as JSON.")
def diff(country: str, years: tuple[int, ...], series: str | None, as_json: bool) -> None:
    """What changed in COUNTRY's report between YEAR_A and YEAR_B: the tier, and per section the
    paragraphs added, removed and reworded (word by word), and how many are unchanged.
    `diff URL` compares the last two fetched versions of one page."""

    is_url = country.startswith(("http://", "https://"))
    if len(years) != (0 if is_url else 2):
        fail("give two years (report-ingest diff COUNTRY YEAR_A YEAR_B) or one URL (report-ingest diff URL)")
    es, names = reader_and_names()
    try:
        if is_url:
            from workers.editions.revised import compare_versions
            from workers.settings import get_settings

            result = compare_versions(es, names, country, get_settings().revisions_kept)
        else:
            from workers.editions.compare import compare

            result = compare(es, names.reports, country, years[0], years[1], series)
    except LookupError as exc:
        fail(str(exc))
    if as_json:
        _json(result)
    else:
        _print_diff(result, Style.for_stdout())


@click.command()
@click.option("--series", help="Only this series.")
@click.option("--from", "year_from", type=int)
@click.option("--to", "year_to", type=int)
@click.option("--region", help='A State Department region ("Africa", "Europe", ...).')
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
def tiers(series: str | None, year_from: int | None, year_to: int | None, region: str | None, fmt: str) -> None:
    """The country x year matrix of tiers: one report per cell (copies collapsed), moves and
    conflicts marked."""
    from workers.editions.matrix import cells, table, to_csv
    from workers.editions.read import edition_query, editions, with_moves

    es, names = reader_and_names()
    # Moves need each country's edition before --from: read from the start, show from --from.
    found = with_moves(list(editions(es, names.reports, edition_query(series=series, year_to=year_to,
                                                                       region=region))))
    rows = [row for row in cells(found) if year_from is None or row["year"] >= year_from]
    if fmt == "json":
        _json(rows)
    elif fmt == "csv":
        click.echo(to_csv(rows), nl=False)
    else:
        click.echo(table(rows) if rows else "no editions")
