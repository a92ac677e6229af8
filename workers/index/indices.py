"""Elasticsearch indices, their templates and the aliases in front of them.

Every physical index lives behind an alias (`reports`, `raw-pages`,
`failures`, each with the configured prefix), so a rebuild can swap what
the alias points at in one atomic call. Index names are always passed in,
never taken from shared state.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from workers.es_read import Searcher

log = logging.getLogger(__name__)

KINDS = ("reports", "raw-pages", "failures")

ENGLISH_ANALYSIS = {
    "filter": {
        "english_stop": {"type": "stop", "stopwords": "_english_"},
        "english_possessive": {"type": "stemmer", "language": "possessive_english"},
        "english_stemmer": {"type": "stemmer", "language": "english"},
    },
    "analyzer": {
        # Default analyzer of the index, so the template never names an analyzer
        # that a minimal cluster lacks.
        "default": {
            "tokenizer": "standard",
            "filter": ["english_possessive", "lowercase", "asciifolding", "english_stop", "english_stemmer"],
        }
    },
}


@dataclass(frozen=True)
class IndexNames:
    """The aliases (and physical-index prefixes) for one index prefix."""

    prefix: str = ""

    def alias(self, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}")
        return f"{self.prefix}{kind}"

    @property
    def reports(self) -> str:
        return self.alias("reports")

    @property
    def raw_pages(self) -> str:
        return self.alias("raw-pages")

    @property
    def failures(self) -> str:
        return self.alias("failures")

    def physical(self, kind: str, schema_version: int, stamp: str) -> str:
        return f"{self.alias(kind)}-v{schema_version}-{stamp}"


def load_template(schemas_dir: Path, kind: str) -> dict:
    return json.loads((schemas_dir / "templates" / f"{kind}.json").read_text())


def schema_version(template: dict) -> int:
    return template["template"]["mappings"]["_meta"]["schema_version"]


def replica_settings(replicas: int | str) -> dict:
    """Index settings for ELASTICSEARCH_REPLICAS: "auto" lets Elasticsearch keep one replica while a
    second data node can hold it (none on a single node, where a replica could never be assigned
    and the cluster would stay yellow); a number fixes it."""
    if replicas == "auto":
        return {"auto_expand_replicas": "0-1"}
    return {"auto_expand_replicas": "false", "number_of_replicas": replicas}


def install_templates(es: Elasticsearch, names: IndexNames, schemas_dir: Path, replicas: int | str = "auto") -> list[str]:
    """Put every index template, prefixed, with the replicas asked for; PUT overwrites, so this is idempotent."""
    installed = []
    for kind in KINDS:
        template = load_template(schemas_dir, kind)
        name = f"{names.prefix}report-ingest-{kind}"
        body = template["template"]
        es.indices.put_index_template(
            name=name,
            index_patterns=[names.prefix + p for p in template["index_patterns"]],
            priority=template["priority"],
            template={**body, "settings": {**body.get("settings", {}), **replica_settings(replicas)}},
            meta={"managed_by": "report-ingest", "schema_version": schema_version(template)},
        )
        installed.append(name)
    return installed


def cluster_has_english(es: Elasticsearch) -> bool:
    """English stemming lives in the analysis-common module, which minimal nodes lack."""
    info = es.nodes.info(metric="plugins", filter_path="nodes.*.modules.name")
    nodes = info.get("nodes", {}).values()
    return bool(nodes) and all(
        any(m["name"] == "analysis-common" for m in node.get("modules", [])) for node in nodes
    )


def create_index(
    es: Elasticsearch, names: IndexNames, kind: str, schemas_dir: Path, *,
    stamp: str | None = None, extra_meta: dict | None = None, settings: dict | None = None,
    aliases: dict | None = None,
) -> str:
    """Create a physical index for `kind`; the analysis choice is made here and recorded."""
    template = load_template(schemas_dir, kind)
    version = schema_version(template)
    stamp = stamp or datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    index = names.physical(kind, version, stamp)
    english = kind == "reports" and cluster_has_english(es)
    index_settings = dict(settings or {})
    if english:
        index_settings["analysis"] = ENGLISH_ANALYSIS
    meta = {
        **template["template"]["mappings"]["_meta"],
        "analysis": "english" if english else "standard",
        "created_at": datetime.now(UTC).isoformat(),
        **(extra_meta or {}),
    }
    es.indices.create(
        index=index, settings=index_settings, mappings={"_meta": meta}, aliases=aliases or {}
    )
    return index


def ensure_indices(es: Elasticsearch, names: IndexNames, schemas_dir: Path,
                   replicas: int | str = "auto") -> dict[str, str]:
    """Install templates and make sure every alias points at an index, with `replicas` on every
    live index too (a live change: Elasticsearch copies or drops replicas as it goes). Safe to run
    anywhere, any time.

    The first index of each kind has a fixed name, so two processes bootstrapping
    at once create one index, not two.
    """
    from elasticsearch import ApiError  # here: `status` reads document_counts without the full client

    install_templates(es, names, schemas_dir, replicas)
    live = {}
    for kind in KINDS:
        alias = names.alias(kind)
        if not es.indices.exists_alias(name=alias):
            try:
                create_index(
                    es, names, kind, schemas_dir, stamp="initial",
                    aliases={alias: {"is_write_index": True}},
                )
            except ApiError as exc:
                if exc.meta.status != 400 or "already_exists" not in str(exc):
                    raise
        live[kind] = next(iter(es.indices.get_alias(name=alias)))
    es.indices.put_settings(index=",".join(live.values()), settings={
        f"index.{key}": value for key, value in replica_settings(replicas).items()})
    add_new_fields(es, names, schemas_dir)
    return live


def document_counts(es: Searcher, names: IndexNames) -> dict[str, int | None]:
    """Documents behind each alias; None for an alias not created yet (`report-ingest setup`)."""
    return {alias: es.count(index=alias)["count"] if es.indices.exists_alias(name=alias) else None
            for alias in map(names.alias, KINDS)}


def add_new_fields(es: Elasticsearch, names: IndexNames, schemas_dir: Path) -> list[str]:
    """Give the live indices the fields their templates gained since they were created.

    Mappings are strict, so a document with a field its index lacks is refused; adding
    fields is safe on a live index (changing one is not: that takes `report-ingest reindex`).
    Needs only index privileges, so a worker can do it. Returns the indices it could not update.
    """
    from elasticsearch import ApiError

    stale = []
    for kind in KINDS:
        properties = load_template(schemas_dir, kind)["template"]["mappings"]["properties"]
        try:
            es.indices.put_mapping(index=names.alias(kind), properties=properties)
        except ApiError as exc:
            if exc.meta.status != 400:
                raise
            log.warning("%s: the template's mapping conflicts with the live index (%s); "
                        "run `report-ingest reindex` to rebuild it", names.alias(kind), exc)
            stale.append(names.alias(kind))
    return stale
