"""The Kibana saved objects against the index template, and setup_kibana against a stand-in Kibana.

Kibana cannot run here, so the field checks walk the NDJSON the way Kibana reads it (data view,
saved search, Lens state, dashboard controls) and hold every field it names to the mapping in
schemas/templates/reports.json.
"""

from __future__ import annotations

import base64
import copy
import email.parser
import email.policy
import json
import runpy
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from workers.kibana import KibanaSetupError, default_assets_dir, load_saved_objects, setup_kibana
from workers.settings import REPO_ROOT, Secret, Settings

ASSETS_DIR = REPO_ROOT / "deploy" / "kibana"
TEMPLATE = REPO_ROOT / "schemas" / "templates" / "reports.json"

KEYWORD = {"keyword", "constant_keyword", "wildcard"}
NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}
DATE = {"date", "date_nanos"}
AGGREGATABLE = KEYWORD | NUMERIC | DATE | {"boolean", "ip"}
# What each use of a field needs from its mapping. A use missing here is reported, not waved through.
ALLOWED_TYPES = {
    "time field": DATE,
    "sort": AGGREGATABLE,
    "terms": KEYWORD | NUMERIC | {"boolean", "ip"},
    "unique_count": AGGREGATABLE,
    "last_value": AGGREGATABLE,
    "date_histogram": DATE,
    "range": NUMERIC,
    "average": NUMERIC,
    "sum": NUMERIC,
    "median": NUMERIC,
    "standard_deviation": NUMERIC,
    "percentile": NUMERIC,
    "min": NUMERIC | DATE,
    "max": NUMERIC | DATE,
    "optionsListControl": KEYWORD | NUMERIC | {"boolean", "ip"},
    "rangeSliderControl": NUMERIC,
    "format url": KEYWORD,
    "format date": DATE,
}
ANY = "any mapped field"
LENS_RECORDS = "___records___"


def mapped_fields(template: dict[str, Any]) -> dict[str, str]:
    """Dotted field path -> mapping type, including objects' children and multi-fields."""
    fields: dict[str, str] = {}

    def walk(properties: dict[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            path = prefix + name
            if "properties" in spec:
                walk(spec["properties"], path + ".")
                continue
            fields[path] = spec["type"]
            for sub, sub_spec in spec.get("fields", {}).items():
                fields[f"{path}.{sub}"] = sub_spec["type"]

    walk(template["template"]["mappings"]["properties"], "")
    return fields


def lens_documents(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, Lens attributes) for Lens objects and for Lens panels stored by value in dashboards."""
    for obj in objects:
        if obj["type"] == "lens":
            yield f"lens/{obj['id']}", obj["attributes"]
        elif obj["type"] == "dashboard":
            for panel in json.loads(obj["attributes"]["panelsJSON"]):
                attributes = panel.get("embeddableConfig", {}).get("attributes")
                if panel["type"] == "lens" and attributes:
                    yield f"dashboard/{obj['id']} panel {panel['panelIndex']}", attributes


def field_uses(objects: list[dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
    """(where, field, use) for every field the saved objects name."""
    for obj in objects:
        where, attributes = f"{obj['type']}/{obj['id']}", obj["attributes"]
        if obj["type"] == "index-pattern":
            if attributes.get("timeFieldName"):
                yield where, attributes["timeFieldName"], "time field"
            for field in json.loads(attributes.get("fieldAttrs") or "{}"):
                yield where + " fieldAttrs", field, ANY
            for field, field_format in json.loads(attributes.get("fieldFormatMap") or "{}").items():
                yield where + " fieldFormatMap", field, f"format {field_format['id']}"
            for source_filter in json.loads(attributes.get("sourceFilters") or "[]"):
                yield where + " sourceFilters", source_filter["value"], ANY
        elif obj["type"] == "search":
            for column in attributes.get("columns", []):
                yield where + " columns", column, ANY
            for field, _direction in attributes.get("sort", []):
                yield where + " sort", field, "sort"
        elif obj["type"] == "dashboard" and "controlGroupInput" in attributes:
            for control in json.loads(attributes["controlGroupInput"]["panelsJSON"]).values():
                yield where + " controls", control["explicitInput"]["fieldName"], control["type"]
    for where, lens in lens_documents(objects):
        for layer_id, layer in lens["state"]["datasourceStates"]["formBased"]["layers"].items():
            for column_id, column in layer["columns"].items():
                field = column.get("sourceField")
                if field and field != LENS_RECORDS:
                    yield f"{where} layer {layer_id} column {column_id}", field, column["operationType"]


def field_problems(objects: list[dict[str, Any]], fields: dict[str, str]) -> list[str]:
    problems = []
    for where, field, use in field_uses(objects):
        if field not in fields:
            problems.append(f"{where}: {field} is not in the index template")
        elif use != ANY and use not in ALLOWED_TYPES:
            problems.append(f"{where}: no rule says which field types suit {use!r} (add one to ALLOWED_TYPES)")
        elif use != ANY and fields[field] not in ALLOWED_TYPES[use]:
            problems.append(f"{where}: {use} on {field}, which is mapped as {fields[field]}")
    return problems


def reference_problems(objects: list[dict[str, Any]]) -> list[str]:
    """References that point at nothing in the file, and Lens layers without their data view."""
    present = {(obj["type"], obj["id"]) for obj in objects}
    problems = []
    for obj in objects:
        for reference in obj.get("references", []):
            if (reference["type"], reference["id"]) not in present:
                problems.append(f"{obj['type']}/{obj['id']}: {reference['name']} -> missing {reference['type']}/{reference['id']}")
    for where, lens in lens_documents(objects):
        by_name = {reference["name"]: reference for reference in lens.get("references", [])}
        for layer_id in lens["state"]["datasourceStates"]["formBased"]["layers"]:
            reference = by_name.get(f"indexpattern-datasource-layer-{layer_id}")
            if reference is None or ("index-pattern", reference["id"]) not in present:
                problems.append(f"{where}: layer {layer_id} has no data view in the file")
    for obj in objects:
        if obj["type"] != "dashboard":
            continue
        names = {reference["name"] for reference in obj["references"]}
        for panel in json.loads(obj["attributes"]["panelsJSON"]):
            if "panelRefName" in panel and f"{panel['panelIndex']}:{panel['panelRefName']}" not in names:
                problems.append(f"dashboard/{obj['id']}: panel {panel['panelIndex']} refers to nothing")
    return problems


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return load_saved_objects(ASSETS_DIR)


@pytest.fixture(scope="module")
def fields() -> dict[str, str]:
    return mapped_fields(json.loads(TEMPLATE.read_text(encoding="utf-8")))


def test_ndjson_is_what_the_builder_writes() -> None:
    builder = runpy.run_path(str(ASSETS_DIR / "build_saved_objects.py"))
    assert (ASSETS_DIR / "report-ingest.ndjson").read_text(encoding="utf-8") == builder["render"](), (
        "deploy/kibana/report-ingest.ndjson is stale: run python deploy/kibana/build_saved_objects.py"
    )


def test_every_field_exists_with_a_type_that_suits_its_use(objects, fields) -> None:
    uses = list(field_uses(objects))
    # Guards the walker itself: if it stopped seeing Lens columns or controls, nothing would fail.
    assert {use for _, _, use in uses} >= {"time field", "sort", "terms", "unique_count", "average", "max", "optionsListControl"}
    assert field_problems(objects, fields) == []


def test_field_checker_rejects_misused_and_unknown_fields(objects, fields) -> None:
    broken = copy.deepcopy(objects)
    dashboard = next(obj for obj in broken if obj["type"] == "dashboard")
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    columns = panels[0]["embeddableConfig"]["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
    column = next(iter(next(iter(columns.values()))["columns"].values()))
    column.update(operationType="terms", sourceField="summary")
    dashboard["attributes"]["panelsJSON"] = json.dumps(panels)
    data_view = next(obj for obj in broken if obj["type"] == "index-pattern")
    data_view["attributes"]["timeFieldName"] = "report_year"
    search = next(obj for obj in broken if obj["type"] == "search")
    search["attributes"]["columns"].append("no_such_field")

    problems = "\n".join(field_problems(broken, fields))

    assert "terms on summary, which is mapped as text" in problems
    assert "time field on report_year, which is mapped as integer" in problems
    assert "no_such_field is not in the index template" in problems


def test_data_view_targets_the_alias_with_readable_names(objects, fields) -> None:
    data_view = next(obj for obj in objects if obj["type"] == "index-pattern")
    assert data_view["attributes"]["title"] == "reports"
    assert data_view["attributes"]["timeFieldName"] == "publication_date"
    labels = json.loads(data_view["attributes"]["fieldAttrs"])
    unlabelled = set(fields) - set(labels)
    assert not unlabelled, f"fields without a customLabel: {sorted(unlabelled)}"


def test_references_resolve_within_the_file(objects) -> None:
    assert reference_problems(objects) == []
    broken = copy.deepcopy(objects)
    next(obj for obj in broken if obj["type"] == "search")["references"][0]["id"] = "gone"
    assert any("missing index-pattern/gone" in problem for problem in reference_problems(broken))


def test_dashboard_has_the_panels_the_issue_asks_for(objects) -> None:
    dashboard = next(obj for obj in objects if obj["type"] == "dashboard")
    assert dashboard["attributes"]["title"] == "Trafficking in Persons overview"
    titles = {panel["title"] for panel in json.loads(dashboard["attributes"]["panelsJSON"])}
    assert titles == {
        "Countries per tier per year",
        "Tier history of the chosen country",
        "Trafficking roles",
        "Exploitation types",
        "Top publishers",
        "Recent reports",
        "Tier moves",
        "New editions (last 30 days)",
    }


def test_tier_moves_are_each_countrys_rank_minus_the_year_before(objects) -> None:
    [(where, lens)] = [(w, l) for w, l in lens_documents(objects) if l["title"] == "Tier moves"]
    [layer] = lens["state"]["datasourceStates"]["formBased"]["layers"].values()
    columns = layer["columns"]
    assert [c["operationType"] for c in columns.values()] == ["terms", "date_histogram", "average", "differences"]
    assert columns["move"]["references"] == ["rank"] and columns["rank"]["sourceField"] == "tier_rank", where


def test_new_editions_are_those_published_in_the_last_30_days(objects) -> None:
    search = next(obj for obj in objects if obj["id"] == "report-ingest-new-editions")
    source = json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert source["query"] == {"query": "publication_date >= now-30d", "language": "kuery"}
    assert search["attributes"]["sort"] == [["publication_date", "desc"]]


def test_countries_per_tier_per_year_counts_reports_not_copies(objects) -> None:
    """A report mirrored on three sites is one country in its tier, not three."""
    [(where, lens)] = [(w, l) for w, l in lens_documents(objects) if l["title"] == "Countries per tier per year"]
    [layer] = lens["state"]["datasourceStates"]["formBased"]["layers"].values()
    metrics = [c for c in layer["columns"].values() if not c["isBucketed"]]
    assert [(c["operationType"], c["sourceField"]) for c in metrics] == [("unique_count", "report_key")], where


def test_index_prefix_renames_only_the_data_view(objects) -> None:
    prefixed = load_saved_objects(ASSETS_DIR, index_prefix="test-")
    assert next(obj for obj in prefixed if obj["type"] == "index-pattern")["attributes"]["title"] == "test-reports"
    assert [obj for obj in prefixed if obj["type"] != "index-pattern"] == [obj for obj in objects if obj["type"] != "index-pattern"]


def test_default_assets_dir_is_deploy_kibana() -> None:
    assert default_assets_dir(Settings()) == ASSETS_DIR


# --- setup_kibana against a stand-in for Kibana's HTTP API ---------------------------------------


class FakeKibana:
    """Answers /api/status and the import endpoint like Kibana 9 does, and records what it was sent."""

    def __init__(self) -> None:
        self.not_ready_polls = 0  # 503 with a plain body, as Kibana answers while it boots
        self.status_code = 200
        self.status_body: dict[str, Any] = {"status": {"overall": {"level": "available", "summary": "All services are available"}}}
        self.import_response: tuple[int, dict[str, Any]] | None = None  # None: import everything sent
        self.status_polls = 0
        self.imports: list[dict[str, Any]] = []
        self.url = ""


@pytest.fixture
def kibana() -> Iterator[FakeKibana]:
    fake = FakeKibana()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def reply(self, code: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path != "/api/status":
                return self.reply(404, b"{}")
            fake.status_polls += 1
            if fake.status_polls <= fake.not_ready_polls:
                return self.reply(503, b"Kibana server is not ready yet", "text/plain")
            self.reply(fake.status_code, json.dumps(fake.status_body).encode())

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body
            )
            parts = [
                {
                    "name": part.get_param("name", header="content-disposition"),
                    "filename": part.get_filename(),
                    "content": part.get_payload(decode=True).decode(),
                }
                for part in message.iter_parts()
            ]
            fake.imports.append(
                {"path": url.path, "query": parse_qs(url.query), "headers": dict(self.headers), "parts": parts}
            )
            if fake.import_response is not None:
                code, response = fake.import_response
                return self.reply(code, json.dumps(response).encode())
            sent = [json.loads(line) for part in parts for line in part["content"].splitlines()]
            results = [{"type": obj["type"], "id": obj["id"], "meta": {}} for obj in sent]
            self.reply(200, json.dumps({"success": True, "successCount": len(results), "successResults": results}).encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "kibana_url": url,
        "elasticsearch_api_key": None,
        "elasticsearch_username": "elastic",
        "elasticsearch_password": Secret("s3cret"),
        "elasticsearch_ca_certs": None,
        "connect_timeout": 1.0,
        "elasticsearch_timeout": 2.0,
    }
    return Settings(**(values | overrides))


def run_setup(settings: Settings, messages: list[str], timeout: float = 5.0) -> dict[str, Any]:
    return setup_kibana(settings, assets_dir=ASSETS_DIR, timeout=timeout, poll_interval=0.01, echo=messages.append)


def test_setup_waits_for_kibana_then_uploads_with_overwrite_and_auth(kibana: FakeKibana, objects) -> None:
    kibana.not_ready_polls = 2
    messages: list[str] = []

    summary = run_setup(settings_for(kibana.url), messages)

    assert kibana.status_polls == 3
    assert any("not ready yet (HTTP 503)" in message for message in messages)
    [upload] = kibana.imports
    assert upload["path"] == "/api/saved_objects/_import"
    assert upload["query"] == {"overwrite": ["true"]}
    assert upload["headers"]["kbn-xsrf"]
    assert upload["headers"]["Authorization"] == "Basic " + base64.b64encode(b"elastic:s3cret").decode()
    assert upload["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    [part] = upload["parts"]
    assert part["name"] == "file" and part["filename"].endswith(".ndjson")
    assert [json.loads(line) for line in part["content"].splitlines()] == objects
    assert summary["imported"] == len(objects)
    assert summary["objects"] == [f"{obj['type']}/{obj['id']}" for obj in objects]


def test_setup_sends_the_api_key_when_one_is_set(kibana: FakeKibana) -> None:
    run_setup(settings_for(kibana.url, elasticsearch_api_key=Secret("a2V5OnNlY3JldA==")), [])
    assert kibana.imports[0]["headers"]["Authorization"] == "ApiKey a2V5OnNlY3JldA=="


def test_setup_gives_up_at_the_deadline_with_the_last_status(kibana: FakeKibana) -> None:
    kibana.status_code = 503
    kibana.status_body = {"status": {"overall": {"level": "unavailable", "summary": "elasticsearch is unavailable"}}}

    with pytest.raises(KibanaSetupError, match="not available after 0s .*elasticsearch is unavailable"):
        run_setup(settings_for(kibana.url), [], timeout=0.2)
    assert kibana.imports == []


def test_setup_fails_fast_on_rejected_credentials(kibana: FakeKibana) -> None:
    kibana.status_code = 401
    kibana.status_body = {"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"}

    with pytest.raises(KibanaSetupError, match="refused the credentials"):
        run_setup(settings_for(kibana.url), [], timeout=30)
    assert kibana.status_polls == 1


def test_setup_reports_objects_the_import_rejected(kibana: FakeKibana) -> None:
    kibana.import_response = (
        200,
        {
            "success": False,
            "successCount": 2,
            "errors": [
                {
                    "id": "report-ingest-tip-overview",
                    "type": "dashboard",
                    "meta": {"title": "Trafficking in Persons overview"},
                    "error": {"type": "missing_references", "references": [{"type": "index-pattern", "id": "gone"}]},
                }
            ],
        },
    )

    with pytest.raises(KibanaSetupError, match="imported 2 of 4") as caught:
        run_setup(settings_for(kibana.url), [])
    assert caught.value.errors == [
        "dashboard/report-ingest-tip-overview 'Trafficking in Persons overview': missing_references index-pattern/gone"
    ]


def test_setup_reports_a_refused_import(kibana: FakeKibana) -> None:
    kibana.import_response = (400, {"statusCode": 400, "error": "Bad Request", "message": "Invalid file extension .txt"})

    with pytest.raises(KibanaSetupError, match=r"HTTP 400\): Invalid file extension"):
        run_setup(settings_for(kibana.url), [])


def test_setup_reports_an_unreachable_kibana() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as server:
        closed_port = server.server_address[1]
    with pytest.raises(KibanaSetupError, match="not reachable: ConnectionError"):
        run_setup(settings_for(f"http://127.0.0.1:{closed_port}"), [], timeout=0.1)
