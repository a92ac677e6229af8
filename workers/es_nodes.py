"""ELASTICSEARCH_URL as a list of nodes: one URL, or several separated by commas.

The client spreads requests over the nodes listed and, when one does not answer, retries the
request on another (workers/clients.py); list at least two of a cluster's nodes, so losing one
loses no request. A malformed list is refused at start-up in one line that names the bad entry.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def elasticsearch_nodes(value: str) -> list[str]:
    """The node URLs ELASTICSEARCH_URL lists, in order; ValueError naming the first malformed one."""
    nodes = [part.strip() for part in value.split(",")]
    for node in nodes:
        if not node:
            raise ValueError(f"{value!r} has an empty entry: list nodes as http://host:9200,http://host2:9200")
        try:
            parts = urlsplit(node)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as exc:
            raise ValueError(f"{node!r} is not a node URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{node!r} is not a node URL: write each as http(s)://host:port, separated by commas")
    return nodes


def redacted_nodes(value: str) -> str:
    """ELASTICSEARCH_URL for a message: each node's URL without its credentials."""
    from workers.redaction import redact_url

    return ",".join(redact_url(node) for node in value.split(","))
