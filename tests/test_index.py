"""Indices, the reports template and bulk writes against real Elasticsearch.

The only fakes here stand in for `es.nodes.info` / `es.indices.create` in the
pure decision of which analysis a new index gets, because the test node
cannot have analysis-common; and the backoff sleep of `bulk_write`, replaced
by a hook that records it (and, in one test, lifts a real index block).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
import types
from datetime import datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

import workers.index.bulk as index_module
from devtools import services as devservices
from workers.clients import elasticsearch_client
from workers.index.indices import ENGLISH_ANALYSIS, KINDS, IndexNames, cluster_has_english, create_index, ensure_indices, load_template, schema_version
from workers.index.bulk import BulkWriteError, bulk_write
from workers.documents import tier_rank
from workers.search.faceted import HIGHLIGHT_FIELDS, SEARCH_FIELDS, SORTS, ReportSearch

PAGES = Path(__file__).parent / "fixtures" / "pages"
NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float",
           "unsigned_long"}


@pytest.fixture(scope="module")
def live(es, names, settings) -> dict[str, str]:
    return ensure_indices(es, names, settings.schemas_dir)


class _Clock:
    """Stands in for `time` in workers.index: records bulk_write's backoff instead of sleeping,
    and runs any hooks a test adds (lifting a real index block between attempts)."""

    def __init__(self) -> None:
        self.slept: list[float] = []
        self.hooks: list = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        for hook in self.hooks:
            hook()


@pytest.fixture
def clock(monkeypatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(index_module, "time", clock)
    return clock


def report(name: str, **changes) -> dict:
    doc = json.loads((PAGES / f"{name}.expected.json").read_text())
    doc["tier_rank"] = tier_rank(doc["tier"])
    doc["fetched_at"] = "2024-05-01T12:00:00+00:00"
    doc.update(changes)
    return doc


def index_action(index: str, doc: dict) -> dict:
    return {"_op_type": "index", "_index": index, "_id": doc["id"], "_source": doc}


def only_physical(es: Elasticsearch, alias: str) -> tuple[str, dict]:
    aliases = es.indices.get_alias(name=alias).body
    assert len(aliases) == 1, aliases
    physical, body = next(iter(aliases.items()))
    return physical, body["aliases"][alias]


# --- indices and aliases -------------------------------------------------------------------


def test_ensure_indices_is_idempotent(es, names, settings, live) -> None:
    again = ensure_indices(es, names, settings.schemas_dir)
    assert again == live
    assert set(live) == set(KINDS)
    for kind, physical in live.items():
        version = schema_version(load_template(settings.schemas_dir, kind))
        assert physical == names.physical(kind, version, "initial")
        found, alias = only_physical(es, names.alias(kind))
        assert found == physical
        assert alias.get("is_write_index") is True
    # Nothing else was created under this prefix.
    assert set(es.indices.get(index=f"{names.prefix}*").body) == set(live.values())
    templates = {t["name"] for t in es.indices.get_index_template(name=f"{names.prefix}report-ingest-*")["index_templates"]}
    assert templates == {f"{names.prefix}report-ingest-{kind}" for kind in KINDS}


def test_concurrent_bootstrap_creates_one_index_per_alias(es, names, settings) -> None:
    race = IndexNames(f"{names.prefix}race-")
    barrier = threading.Barrier(4)
    results: list[dict] = []
    errors: list[BaseException] = []

    def bootstrap() -> None:
        barrier.wait()
        try:
            results.append(ensure_indices(es, race, settings.schemas_dir))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=bootstrap) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert len(results) == 4 and all(r == results[0] for r in results)
        for kind in KINDS:
            assert only_physical(es, race.alias(kind))[0] == results[0][kind]
    finally:
        es.indices.delete(index=f"{race.prefix}*", expand_wildcards="all")
        es.indices.delete_index_template(name=f"{race.prefix}report-ingest-*")


def test_live_mapping_is_the_template_and_strict(es, names, settings, live) -> None:
    template = load_template(settings.schemas_dir, "reports")["template"]["mappings"]
    assert template["dynamic"] == "strict"
    mapping = es.indices.get_mapping(index=live["reports"])[live["reports"]]["mappings"]
    assert mapping["dynamic"] == "strict"
    # Elasticsearch leaves out a date format that is the default one.
    default_date = "strict_date_optional_time||epoch_millis"
    expected = {
        name: {k: v for k, v in spec.items() if not (k == "format" and v == default_date)}
        for name, spec in template["properties"].items()
    }
    assert mapping["properties"] == expected


def _has_analysis_common(es: Elasticsearch) -> bool:
    modules = es.nodes.info(metric="plugins")["nodes"]
    return all(any(m["name"] == "analysis-common" for m in node["modules"]) for node in modules.values())


def test_minimal_node_gets_standard_analysis(es, live, settings) -> None:
    index = live["reports"]
    meta = es.indices.get_mapping(index=index)[index]["mappings"]["_meta"]
    datetime.fromisoformat(meta["created_at"])
    if _has_analysis_common(es):  # pointed at a full cluster through ELASTICSEARCH_URL
        assert cluster_has_english(es) is True
        assert meta["analysis"] == "english"
        return
    assert cluster_has_english(es) is False
    assert meta["analysis"] == "standard"
    assert meta["schema_version"] == schema_version(load_template(settings.schemas_dir, "reports"))
    assert "analysis" not in es.indices.get_settings(index=index)[index]["settings"]["index"]
    # The default analyzer really is the standard one: no stemming.
    tokens = es.indices.analyze(index=index, text="Trafficked children's")["tokens"]
    assert [t["token"] for t in tokens] == ["trafficked", "children's"]


class _FakeCluster:
    """Only what create_index touches: `nodes.info` answers, `indices.create` is recorded."""

    def __init__(self, info: dict):
        self.nodes = types.SimpleNamespace(info=lambda **kwargs: copy.deepcopy(info))
        self.created: list[dict] = []
        self.indices = types.SimpleNamespace(create=lambda **kwargs: self.created.append(kwargs))


def test_english_analysis_is_chosen_only_when_every_node_has_analysis_common(es, names, settings) -> None:
    # Start from what this real node answers, so the fake has the real shape.
    real = es.nodes.info(metric="plugins", filter_path="nodes.*.modules.name").body
    assert real["nodes"]
    with_module = copy.deepcopy(real)
    for node in with_module["nodes"].values():
        node["modules"].append({"name": "analysis-common"})
    mixed = copy.deepcopy(with_module)
    mixed["nodes"]["other-node"] = next(iter(real["nodes"].values()))

    assert cluster_has_english(_FakeCluster(with_module)) is True
    assert cluster_has_english(_FakeCluster(mixed)) is False
    assert cluster_has_english(_FakeCluster({})) is False

    full = _FakeCluster(with_module)
    name = create_index(full, names, "reports", settings.schemas_dir, stamp="probe")
    assert name == names.physical("reports", schema_version(load_template(settings.schemas_dir, "reports")), "probe")
    (created,) = full.created
    assert created["index"] == name
    assert created["settings"]["analysis"] == ENGLISH_ANALYSIS
    assert created["mappings"]["_meta"]["analysis"] == "english"
    assert created["settings"]["analysis"]["analyzer"]["default"]["filter"][-1] == "english_stemmer"

    # Only report indices get it; and a cluster without the module gets none.
    create_index(full, names, "failures", settings.schemas_dir, stamp="probe")
    assert "analysis" not in full.created[-1]["settings"]
    assert full.created[-1]["mappings"]["_meta"]["analysis"] == "standard"
    bare = _FakeCluster(mixed)
    create_index(bare, names, "reports", settings.schemas_dir, stamp="probe")
    assert "analysis" not in bare.created[-1]["settings"]
    assert bare.created[-1]["mappings"]["_meta"]["analysis"] == "standard"


# --- the fields search relies on -------------------------------------------------------------


def _field(properties: dict, path: str) -> dict:
    """Resolve `country.iso2` or a multi-field like `title.keyword` in template properties."""
    head, _, rest = path.partition(".")
    node = properties[head]
    while rest:
        head, _, rest = rest.partition(".")
        node = (node.get("properties") or node["fields"])[head]
    return node


def test_every_facet_field_is_keyword_or_numeric(es, settings, live) -> None:
    properties = load_template(settings.schemas_dir, "reports")["template"]["mappings"]["properties"]
    fields = {name: facet.field for name, facet in ReportSearch.facets.items()}
    assert len(fields) == len(ReportSearch.facets) >= 9
    for name, path in fields.items():
        kind = _field(properties, path)["type"]
        assert kind == "keyword" or kind in NUMERIC, (name, path, kind)
        live_mapping = es.indices.get_field_mapping(index=live["reports"], fields=path)[live["reports"]]
        assert next(iter(live_mapping["mappings"][path]["mapping"].values()))["type"] == kind


def test_search_sort_and_highlight_fields_exist(settings) -> None:
    properties = load_template(settings.schemas_dir, "reports")["template"]["mappings"]["properties"]
    for path in SEARCH_FIELDS:
        assert _field(properties, path.split("^")[0])["type"] in {"text", "keyword"}, path
    for path in HIGHLIGHT_FIELDS:
        assert _field(properties, path)["type"] == "text", path
    for order in SORTS.values():
        for key in order:
            if key != "_score":
                path = next(iter(key))
                assert _field(properties, path)["type"] in {"date", "keyword"} | NUMERIC, path


# --- bulk writes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 200], ids=["chunk-per-item", "one-chunk"])
@pytest.mark.parametrize("unknown", [{"not_a_field": "x"}, {"country": {"name": "Mali", "continent": "Africa"}}],
                         ids=["top-level", "nested"])
def test_strict_mapping_rejects_the_bad_item_and_writes_the_rest(es, names, live, clock, chunk_size,
                                                                 unknown) -> None:
    suffix = f"-{chunk_size}-{next(iter(unknown))}"
    first = report("refworld_legacy_mali_2002", id=f"good-a{suffix}")
    bad = report("statedept_qatar_2018", id=f"bad{suffix}", **unknown)
    last = report("statedept_taiwan_2017", id=f"good-b{suffix}")
    actions = [index_action(names.reports, d) for d in (first, bad, last)]
    with pytest.raises(BulkWriteError) as raised:
        bulk_write(es, actions, chunk_size=chunk_size)
    result = raised.value.result
    assert result.succeeded == 2
    assert [e.action for e in result.errors] == [actions[1]]
    assert result.errors[0].status == 400
    assert result.errors[0].reason.startswith("strict_dynamic_mapping_exception")
    assert "1 bulk item(s) failed" in str(raised.value)
    assert clock.slept == []  # a mapping error is not worth sending again
    es.indices.refresh(index=names.reports)
    assert es.get(index=names.reports, id=first["id"])["_source"] == first
    assert es.get(index=names.reports, id=last["id"])["_source"] == last
    assert not es.exists(index=names.reports, id=bad["id"])


def test_delete_of_a_missing_document_is_not_an_error(es, names, live) -> None:
    result = bulk_write(es, [{"_op_type": "delete", "_index": names.failures, "_id": "never-written"}])
    assert result.succeeded == 1 and result.errors == []


def _block(es: Elasticsearch, index: str, on: bool) -> None:
    # The flood-stage block: Elasticsearch answers writes with 429 while it is set.
    es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": True if on else None})


def test_busy_items_are_sent_again_and_only_they(es, names, live, clock) -> None:
    blocked = report("statedept_curacao_2023", id="retry-blocked")
    free = {"url": "https://example.org/retry-free", "reason": "http_error", "failed_at": "2024-05-01T12:00:00Z"}
    actions = [index_action(names.reports, blocked),
               {"_op_type": "index", "_index": names.failures, "_id": "retry-free", "_source": free}]
    _block(es, live["reports"], True)
    clock.hooks.append(lambda: _block(es, live["reports"], False))
    try:
        result = bulk_write(es, actions, backoff=0.01)
    finally:
        _block(es, live["reports"], False)
    assert result.succeeded == 2 and result.errors == []
    assert len(clock.slept) == 1 and 0 <= clock.slept[0] <= 0.02  # full jitter within backoff * 2**0 * 2
    # The free item was written once; only the refused one went again.
    assert es.get(index=names.failures, id="retry-free")["_version"] == 1
    assert es.get(index=names.reports, id="retry-blocked")["_source"] == blocked


def test_busy_items_fail_after_the_retries_with_their_status(es, names, live, clock) -> None:
    doc = report("statedept_syria_2022", id="retry-never")
    _block(es, live["reports"], True)
    try:
        with pytest.raises(BulkWriteError) as raised:
            bulk_write(es, [index_action(names.reports, doc)], max_retries=2, backoff=0.01)
    finally:
        _block(es, live["reports"], False)
    (error,) = raised.value.result.errors
    assert error.status == 429 and "cluster_block_exception" in error.reason
    assert raised.value.result.succeeded == 0
    assert len(clock.slept) == 2
    assert not es.exists(index=names.reports, id="retry-never")


def test_unreachable_cluster_is_retried_then_reported_for_every_item(clock) -> None:
    nowhere = Elasticsearch("http://127.0.0.1:9", max_retries=0, request_timeout=2)
    docs = [report("statedept_syria_2022", id=f"nowhere-{i}") for i in range(3)]
    with pytest.raises(BulkWriteError) as raised:
        bulk_write(nowhere, [index_action("reports", d) for d in docs], chunk_size=2, max_retries=1)
    errors = raised.value.result.errors
    assert [e.action["_id"] for e in errors] == [d["id"] for d in docs]
    assert {e.status for e in errors} == {503}
    assert all(e.reason.startswith("connection:") for e in errors)
    assert len(clock.slept) == 1


def test_live_indices_gain_the_fields_their_templates_gained(es, names, settings) -> None:
    """A worker upgraded to a template with a new field must not see every document refused by
    the strict mapping of the index it created before."""
    from workers.index.indices import add_new_fields

    old = IndexNames(f"{names.prefix}upgrade-")
    ensure_indices(es, old, settings.schemas_dir)
    template = load_template(settings.schemas_dir, "reports")
    physical = next(iter(es.indices.get_alias(name=old.reports)))
    es.indices.delete(index=physical)
    es.indices.delete_index_template(name=f"{old.prefix}report-ingest-reports")  # the old template had none
    mappings = copy.deepcopy(template["template"]["mappings"])
    del mappings["properties"]["report_key"]  # as an index made before the field existed
    es.indices.create(index=physical, mappings=mappings, aliases={old.reports: {"is_write_index": True}})
    assert "report_key" not in es.indices.get_mapping(index=physical)[physical]["mappings"]["properties"]
    assert add_new_fields(es, old, settings.schemas_dir) == []
    assert "report_key" in es.indices.get_mapping(index=physical)[physical]["mappings"]["properties"]


# A cluster in miniature on the suite's one node (three nodes, one killed: tests/ha/).
def replicas_of(es, names) -> dict[str, tuple[str, str]]:
    found = {}
    for kind in KINDS:
        for index, body in es.indices.get_settings(index=names.alias(kind)).items():
            settings = body["settings"]["index"]
            found[kind] = (settings["number_of_replicas"], settings.get("auto_expand_replicas", "false"))
    return found


def test_replicas_change_on_live_indices_and_auto_keeps_none_on_a_single_node(es, names, settings, live) -> None:
    ensure_indices(es, names, settings.schemas_dir, replicas=2)
    assert set(replicas_of(es, names).values()) == {("2", "false")}
    ensure_indices(es, names, settings.schemas_dir, replicas="auto")
    # One data node: no replica to assign, so the cluster stays green.
    assert set(replicas_of(es, names).values()) == {("0", "0-1")}
    assert es.cluster.health(index=names.reports)["status"] == "green"


def test_requests_go_on_through_the_other_node_when_a_listed_node_is_dead(settings, names, live) -> None:
    dead = f"http://127.0.0.1:{devservices.free_port()}"
    client = elasticsearch_client(dataclasses.replace(settings, elasticsearch_url=f"{dead},{settings.elasticsearch_url}"))
    # Taken in turn, the dead node gets a request within two; each is retried on the live one.
    assert [client.count(index=names.reports)["count"] >= 0 for _ in range(6)] == [True] * 6
