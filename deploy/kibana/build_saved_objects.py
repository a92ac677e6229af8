"""Write deploy/kibana/report-ingest.ndjson, the saved objects that `report-ingest kibana-setup` imports.

Kibana stores nested JSON as strings (panelsJSON, fieldAttrs, searchSourceJSON), which nobody can
review or edit by hand in NDJSON, so the objects are written here as Python data and serialised.
Run `python deploy/kibana/build_saved_objects.py` after editing; tests/test_kibana.py fails while
the committed NDJSON differs from what this script writes.

Object IDs are fixed so that an import with overwrite=true replaces earlier versions in place.
Migration versions are the ones Kibana's own sample data ships with; Kibana 9 migrates them on
import, and an object claiming a newer version than the running Kibana knows would be refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("report-ingest.ndjson")

DATA_VIEW_ID = "report-ingest-reports"
SEARCH_ID = "report-ingest-recent-reports"
NEW_EDITIONS_ID = "report-ingest-new-editions"
DASHBOARD_ID = "report-ingest-tip-overview"
CORE_MIGRATION_VERSION = "8.8.0"
PANEL_VERSION = "8.11.0"

FIELD_LABELS = {
    "id": "Document ID",
    "url": "Source URL",
    "canonical_url": "Canonical URL",
    "source": "Source",
    "title": "Title",
    "title.keyword": "Title (exact)",
    "publisher": "Publisher",
    "author": "Author",
    "publication_date": "Publication date",
    "last_updated": "Last updated",
    "fetched_at": "Fetched at",
    "report_series": "Report series",
    "report_year": "Report year",
    "country.name": "Country",
    "country.iso2": "Country code (ISO 2)",
    "country.iso3": "Country code (ISO 3)",
    "country.region": "Region",
    "tier": "Tier",
    "tier_rank": "Tier rank (1 best, 3 worst)",
    "citation": "Citation",
    "summary": "Summary",
    "body": "Full text",
    "sections.heading": "Section heading",
    "sections.text": "Section text",
    "trafficking_roles": "Trafficking role",
    "exploitation_types": "Exploitation type",
    "victim_groups": "Victim group",
    "related_countries.name": "Related country",
    "related_countries.iso2": "Related country code",
    "language": "Language",
    "content_sha256": "Content hash",
    "parser_version": "Parser version",
    "gone": "Gone from its site",
    "report_key": "Report (all copies)",
    "container_url": "PDF URL",
    "page_start": "First page in PDF",
    "page_end": "Last page in PDF",
}

RECORDS = "___records___"  # Lens's pseudo-field for "count of documents"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def data_view() -> dict[str, Any]:
    return {
        "id": DATA_VIEW_ID,
        "type": "index-pattern",
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": "7.11.0",
        "managed": False,
        "references": [],
        "attributes": {
            # The alias, not reports-v*: a reindex behind the alias must not change the data view.
            "title": "reports",
            "name": "Trafficking in Persons reports",
            "timeFieldName": "publication_date",
            "fieldAttrs": _json({field: {"customLabel": label} for field, label in FIELD_LABELS.items()}),
            "fieldFormatMap": _json(
                {
                    "url": {"id": "url"},
                    "canonical_url": {"id": "url"},
                    "container_url": {"id": "url"},
                    "publication_date": {"id": "date", "params": {"pattern": "YYYY-MM-DD"}},
                }
            ),
            # Full texts make Discover's document view unreadable; they stay searchable.
            "sourceFilters": _json([{"value": "body"}, {"value": "sections.text"}]),
            "fields": "[]",
            "runtimeFieldMap": "{}",
            "typeMeta": "{}",
            "allowHidden": False,
        },
    }


def saved_search() -> dict[str, Any]:
    return {
        "id": SEARCH_ID,
        "type": "search",
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": "7.9.3",
        "managed": False,
        "references": [
            {"id": DATA_VIEW_ID, "name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern"}
        ],
        "attributes": {
            "title": "Recent reports",
            "description": "Newest reports first, one row per country and report year.",
            "columns": ["report_year", "country.name", "country.region", "tier", "publisher", "title"],
            "sort": [["publication_date", "desc"]],
            "hits": 0,
            "version": 1,
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": _json(
                    {
                        "query": {"query": "", "language": "kuery"},
                        "filter": [],
                        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
                    }
                )
            },
        },
    }


def new_editions() -> dict[str, Any]:
    """Editions published in the last 30 days, newest first: what `report-ingest history` would
    show as the latest row, for every country at once."""
    search = saved_search()
    search["id"] = NEW_EDITIONS_ID
    search["attributes"].update(
        title="New editions (last 30 days)",
        description="Reports published in the last 30 days, newest first, with their tier and URL.",
        columns=["report_year", "country.name", "tier", "report_series", "publisher", "url"],
        kibanaSavedObjectMeta={"searchSourceJSON": _json({
            "query": {"query": "publication_date >= now-30d", "language": "kuery"}, "filter": [],
            "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"})},
    )
    return search


def date_histogram(field: str, label: str, interval: str) -> dict[str, Any]:
    return {
        "label": label,
        "customLabel": True,
        "dataType": "date",
        "operationType": "date_histogram",
        "sourceField": field,
        "isBucketed": True,
        "scale": "interval",
        "params": {"interval": interval, "includeEmptyRows": False, "dropPartials": False},
    }


def differences(of: str, label: str) -> dict[str, Any]:
    """Lens's time-series function: each bucket's `of` minus the previous bucket's."""
    return {"label": label, "customLabel": True, "dataType": "number", "operationType": "differences",
            "isBucketed": False, "scale": "ratio", "references": [of], "params": {}}


def terms(field: str, label: str, *, size: int, data_type: str = "string", by: str | None = None) -> dict[str, Any]:
    """Top values of `field`, by the metric column `by`, or in ascending order when `by` is None."""
    order = {"type": "column", "columnId": by} if by else {"type": "alphabetical", "fallback": False}
    return {
        "label": label,
        "customLabel": True,
        "dataType": data_type,
        "operationType": "terms",
        "sourceField": field,
        "isBucketed": True,
        "scale": "ordinal",
        "params": {
            "size": size,
            "orderBy": order,
            "orderDirection": "desc" if by else "asc",
            "otherBucket": False,
            "missingBucket": False,
            "parentFormat": {"id": "terms"},
        },
    }


def metric(operation: str, field: str, label: str, *, data_type: str = "number") -> dict[str, Any]:
    column: dict[str, Any] = {
        "label": label,
        "customLabel": True,
        "dataType": data_type,
        "operationType": operation,
        "sourceField": field,
        "isBucketed": False,
        "scale": "ratio",
        "params": {},
    }
    if data_type == "number":
        column["params"]["emptyAsNull"] = True
    return column


def count(label: str = "Reports") -> dict[str, Any]:
    return metric("count", RECORDS, label)


def xy(layer: str, series: str, *, x: str, y: str, split: str | None = None, y_title: str | None = None) -> dict[str, Any]:
    layer_config: dict[str, Any] = {
        "layerId": layer,
        "layerType": "data",
        "seriesType": series,
        "xAccessor": x,
        "accessors": [y],
    }
    if split:
        layer_config["splitAccessor"] = split
    visualization: dict[str, Any] = {
        "preferredSeriesType": series,
        "layers": [layer_config],
        "legend": {"isVisible": split is not None, "position": "right"},
        "valueLabels": "hide",
        "fittingFunction": "None",
        "axisTitlesVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
        "tickLabelsVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
        "gridlinesVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
        "yLeftExtent": {"mode": "full"},
        "yRightExtent": {"mode": "full"},
    }
    if y_title:
        visualization["yTitle"] = y_title
    return visualization


def datatable(layer: str, column_ids: list[str]) -> dict[str, Any]:
    return {
        "layerId": layer,
        "layerType": "data",
        "columns": [{"columnId": column_id} for column_id in column_ids],
        "rowHeight": "single",
        "rowHeightLines": 1,
    }


def lens_panel(
    panel: str,
    title: str,
    description: str,
    *,
    grid: tuple[int, int, int, int],
    visualization_type: str,
    layer: str,
    columns: dict[str, dict[str, Any]],
    visualization: dict[str, Any],
) -> dict[str, Any]:
    """A Lens chart stored by value in the dashboard, so the dashboard is one self-contained object."""
    x, y, w, h = grid
    return {
        "version": PANEL_VERSION,
        "type": "lens",
        "gridData": {"x": x, "y": y, "w": w, "h": h, "i": panel},
        "panelIndex": panel,
        "title": title,
        "embeddableConfig": {
            "enhancements": {},
            "attributes": {
                "title": title,
                "description": description,
                "visualizationType": visualization_type,
                "type": "lens",
                "references": [
                    {"type": "index-pattern", "id": DATA_VIEW_ID, "name": f"indexpattern-datasource-layer-{layer}"}
                ],
                "state": {
                    "visualization": visualization,
                    "query": {"query": "", "language": "kuery"},
                    "filters": [],
                    "datasourceStates": {
                        "formBased": {
                            "layers": {
                                layer: {"columns": columns, "columnOrder": list(columns), "incompleteColumns": {}}
                            }
                        }
                    },
                    "internalReferences": [],
                    "adHocDataViews": {},
                },
            },
        },
    }


def lens_panels() -> list[dict[str, Any]]:
    return [
        lens_panel(
            "tiers-per-year",
            "Countries per tier per year",
            "How many countries each report year placed in each tier: distinct reports, so a report "
            "mirrored on several sites, or also in a PDF, counts once.",
            grid=(0, 0, 28, 15),
            visualization_type="lnsXY",
            layer="tiers-per-year",
            columns={
                "year": terms("report_year", "Report year", size=40, data_type="number"),
                "tier": terms("tier", "Tier", size=10),
                "countries": metric("unique_count", "report_key", "Countries"),
            },
            visualization=xy("tiers-per-year", "bar_stacked", x="year", y="countries", split="tier"),
        ),
        lens_panel(
            "tier-history",
            "Tier history of the chosen country",
            "Pick a country in the Country control above; lower is better (1 = Tier 1, 3 = Tier 3).",
            grid=(28, 0, 20, 15),
            visualization_type="lnsXY",
            layer="tier-history",
            columns={
                "year": terms("report_year", "Report year", size=40, data_type="number"),
                "rank": metric("average", "tier_rank", "Tier rank"),
            },
            visualization=xy("tier-history", "line", x="year", y="rank", y_title="Tier rank (lower is better)"),
        ),
        lens_panel(
            "roles",
            "Trafficking roles",
            "How many countries the reports give each trafficking role.",
            grid=(0, 15, 16, 13),
            visualization_type="lnsXY",
            layer="roles",
            columns={
                "countries": metric("unique_count", "country.name", "Countries"),
                "role": terms("trafficking_roles", "Trafficking role", size=10, by="countries"),
            },
            visualization=xy("roles", "bar_horizontal", x="role", y="countries"),
        ),
        lens_panel(
            "exploitation",
            "Exploitation types",
            "Reports that mention each form of exploitation.",
            grid=(16, 15, 16, 13),
            visualization_type="lnsXY",
            layer="exploitation",
            columns={
                "reports": count(),
                "type": terms("exploitation_types", "Exploitation type", size=15, by="reports"),
            },
            visualization=xy("exploitation", "bar_horizontal", x="type", y="reports"),
        ),
        lens_panel(
            "publishers",
            "Top publishers",
            "Who published the reports, and when last.",
            grid=(32, 15, 16, 13),
            visualization_type="lnsDatatable",
            layer="publishers",
            columns={
                "reports": count(),
                "publisher": terms("publisher", "Publisher", size=10, by="reports"),
                "latest": metric("max", "publication_date", "Latest report", data_type="date"),
            },
            visualization=datatable("publishers", ["publisher", "reports", "latest"]),
        ),
        lens_panel(
            "tier-moves",
            "Tier moves",
            "Each country's tier rank per publication year and its change against the year before: "
            "negative is a move up (a better tier), positive a move down. `report-ingest tiers` shows "
            "the same per report year.",
            grid=(0, 28, 48, 15),
            visualization_type="lnsDatatable",
            layer="tier-moves",
            columns={
                "country": terms("country.name", "Country", size=250),
                "year": date_histogram("publication_date", "Published", "1y"),
                "rank": metric("average", "tier_rank", "Tier rank"),
                "move": differences("rank", "Move (- up, + down)"),
            },
            visualization=datatable("tier-moves", ["country", "year", "rank", "move"]),
        ),
    ]


CONTROLS = {
    "country": {"title": "Country", "fieldName": "country.name", "singleSelect": True},
    "region": {"title": "Region", "fieldName": "country.region"},
}


def dashboard() -> dict[str, Any]:
    panels = lens_panels()
    references = [
        {"type": "index-pattern", "id": DATA_VIEW_ID, "name": f"{panel['panelIndex']}:{reference['name']}"}
        for panel in panels
        for reference in panel["embeddableConfig"]["attributes"]["references"]
    ]
    for panel_id, title, search_id, y, h in (("recent-reports", "Recent reports", SEARCH_ID, 43, 18),
                                             ("new-editions", "New editions (last 30 days)", NEW_EDITIONS_ID, 61, 15)):
        panels.append(
            {
                "version": PANEL_VERSION,
                "type": "search",
                "gridData": {"x": 0, "y": y, "w": 48, "h": h, "i": panel_id},
                "panelIndex": panel_id,
                "title": title,
                "embeddableConfig": {"enhancements": {}},
                "panelRefName": f"panel_{panel_id}",
            }
        )
        references.append({"type": "search", "id": search_id, "name": f"{panel_id}:panel_{panel_id}"})
    controls = {
        control_id: {
            "order": order,
            "width": "medium",
            "grow": True,
            "type": "optionsListControl",
            "explicitInput": {"id": control_id, "enhancements": {}, **explicit},
        }
        for order, (control_id, explicit) in enumerate(CONTROLS.items())
    }
    references += [
        {"type": "index-pattern", "id": DATA_VIEW_ID, "name": f"controlGroup_{control_id}:optionsListDataView"}
        for control_id in controls
    ]
    return {
        "id": DASHBOARD_ID,
        "type": "dashboard",
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": "8.7.0",
        "managed": False,
        "references": references,
        "attributes": {
            "title": "Trafficking in Persons overview",
            "description": "Tier placements, trafficking roles and exploitation types from the "
            "U.S. State Department Trafficking in Persons reports.",
            "timeRestore": True,
            # The reports go back to 2001; a shorter default range would hide most of them.
            "timeFrom": "now-30y",
            "timeTo": "now",
            "refreshInterval": {"pause": True, "value": 60000},
            "version": 1,
            "optionsJSON": _json(
                {"useMargins": True, "syncColors": True, "syncCursor": True, "syncTooltips": False, "hidePanelTitles": False}
            ),
            "panelsJSON": _json(panels),
            "controlGroupInput": {
                "controlStyle": "oneLine",
                "chainingSystem": "HIERARCHICAL",
                "panelsJSON": _json(controls),
                "ignoreParentSettingsJSON": _json(
                    {"ignoreFilters": False, "ignoreQuery": False, "ignoreTimerange": False, "ignoreValidations": False}
                ),
            },
            "kibanaSavedObjectMeta": {"searchSourceJSON": _json({"query": {"query": "", "language": "kuery"}, "filter": []})},
        },
    }


def saved_objects() -> list[dict[str, Any]]:
    # Referenced objects first, so that a reader of the file meets them before their users.
    return [data_view(), saved_search(), new_editions(), dashboard()]


def render() -> str:
    return "".join(json.dumps(obj, sort_keys=True) + "\n" for obj in saved_objects())


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT}")
