"""`report-ingest tiers`: the country x year matrix of tiers, one report per cell, as a table,
CSV or JSON, each cell with its move against the country's previous edition and a conflict mark."""

from __future__ import annotations

import csv
import io

from workers.editions.read import Edition

# How a move shows in a table cell; `same` and `new` show nothing.
MOVE_MARKS = {"up": "↑", "down": "↓", "unknown": "?"}
CONFLICT_MARK = "!"
# Tier names as a table cell: "Tier 2 Watch List" is "2WL".
_SHORT = {"Tier 1": "1", "Tier 2": "2", "Tier 2 Watch List": "2WL", "Tier 3": "3", "Special Case": "SC"}


def cells(found: list[Edition]) -> list[dict]:
    """One cell per edition (the JSON rows), in country and year order."""
    return [{"country": e.country.iso2, "name": e.country.name, "region": e.country.region,
             "series": e.series, "year": e.year, "tier": e.tier, "move": e.move, "conflict": e.conflict,
             "url": e.url} for e in found]


def _short(cell: dict) -> str:
    tier = cell["tier"]
    text = _SHORT.get(tier, tier) if tier else "-"
    return text + MOVE_MARKS.get(cell["move"], "") + (CONFLICT_MARK if cell["conflict"] else "")


def _grid(rows: list[dict]) -> tuple[list[int], dict[tuple, dict[int, dict]]]:
    years = sorted({row["year"] for row in rows})
    grid: dict[tuple, dict[int, dict]] = {}
    for row in rows:
        grid.setdefault((row["country"], row["name"], row["series"]), {})[row["year"]] = row
    return years, grid


def table(rows: list[dict]) -> str:
    years, grid = _grid(rows)
    several = len({key[2] for key in grid}) > 1
    labels = {key: f"{key[1]} ({key[0]})" + (f" {key[2]}" if several else "") for key in grid}
    width = max([len("country"), *map(len, labels.values())])
    lines = ["country".ljust(width) + "".join(f"{year:>7}" for year in years)]
    for key, by_year in grid.items():
        lines.append(labels[key].ljust(width) + "".join(
            f"{_short(by_year[year]) if year in by_year else '':>7}" for year in years))
    lines.append(f"tiers: 1, 2, 2WL (Tier 2 Watch List), 3, SC (Special Case); moves: ↑ up, ↓ down, "
                 f"? unknown; {CONFLICT_MARK} copies disagree")
    return "\n".join(lines)


def to_csv(rows: list[dict]) -> str:
    """One row per country (and series), a column per year: the tier, its move and a conflict mark
    in the same notation as the table."""
    years, grid = _grid(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["country", "name", "series", *years])
    for (code, name, series), by_year in grid.items():
        writer.writerow([code, name, series, *(_short(by_year[y]) if y in by_year else "" for y in years)])
    return out.getvalue()
