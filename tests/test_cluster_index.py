"""The replicas setting on live indices, and a node list with a dead node, on the suite's real node
(three nodes and a node killed for real: tests/ha/test_elasticsearch_cluster.py)."""

from __future__ import annotations

from devtools.services import free_port
from workers.clients import elasticsearch_client
from workers.index.indices import KINDS, ensure_indices


def replicas_of(es, names) -> dict[str, tuple[str, str]]:
    found = {}
    for kind in KINDS:
        for index, body in es.indices.get_settings(index=names.alias(kind)).items():
            settings = body["settings"]["index"]
            found[kind] = (settings["number_of_replicas"], settings.get("auto_expand_replicas", "false"))
    return found


def test_replicas_change_on_live_indices_and_auto_keeps_none_on_a_single_node(es, names, settings) -> None:
    ensure_indices(es, names, settings.schemas_dir, replicas=2)
    assert set(replicas_of(es, names).values()) == {("2", "false")}
    ensure_indices(es, names, settings.schemas_dir, replicas="auto")
    # One data node: no replica to assign, so the cluster stays green.
    assert set(replicas_of(es, names).values()) == {("0", "0-1")}
    assert es.cluster.health(index=names.reports)["status"] == "green"


def test_requests_go_on_through_the_other_node_when_a_listed_node_is_dead(settings, names, es) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    client = elasticsearch_client(settings.model_copy(update={"elasticsearch_url": f"{dead},{settings.elasticsearch_url}"}))
    # Taken in turn, the dead node gets a request within two; each is retried on the live one.
    assert [client.count(index=names.reports)["count"] >= 0 for _ in range(6)] == [True] * 6
