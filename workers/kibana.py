"""Install the Kibana data view, saved search and dashboard shipped in deploy/kibana.

Kibana has no client library worth a dependency for two calls, so this speaks its HTTP API with
requests: wait on GET /api/status, then POST /api/saved_objects/_import?overwrite=true. Fixed
object IDs make the import idempotent: running it again replaces the objects in place.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from workers.clients import elasticsearch_credentials
from workers.settings import Settings

Echo = Callable[[str], object]

# Kibana rejects state-changing requests without this header (its CSRF protection); any value works.
XSRF_HEADERS = {"kbn-xsrf": "report-ingest"}
# Progress lines while waiting: on every change of state, else at most this often.
PROGRESS_EVERY = 30.0


class KibanaSetupError(RuntimeError):
    """Kibana never became ready, refused us, or did not import every saved object."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def default_assets_dir(settings: Settings) -> Path:
    # deploy/kibana ships beside schemas/ in the repository and in the image (deploy/Dockerfile),
    # so SCHEMAS_DIR also tells where the saved objects are.
    return settings.schemas_dir.parent / "deploy" / "kibana"


def load_saved_objects(assets_dir: Path, *, index_prefix: str = "") -> list[dict[str, Any]]:
    """Every object of every *.ndjson file in `assets_dir`, data views renamed for the index prefix."""
    files = sorted(assets_dir.glob("*.ndjson"))
    if not files:
        raise KibanaSetupError(f"no *.ndjson saved objects in {assets_dir}")
    objects = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise KibanaSetupError(f"{path}:{number}: not JSON: {exc}") from exc
            # The setup step installs the indices and the alias under INDEX_PREFIX, so the data
            # view has to look for the prefixed alias.
            if obj.get("type") == "index-pattern" and index_prefix:
                obj["attributes"]["title"] = index_prefix + obj["attributes"]["title"]
            objects.append(obj)
    return objects


def kibana_session(settings: Settings) -> requests.Session:
    """A session that authenticates like the Elasticsearch client does, with the same CA."""
    session = requests.Session()
    session.headers.update(XSRF_HEADERS)
    credentials = elasticsearch_credentials(settings)
    if "api_key" in credentials:
        session.headers["Authorization"] = f"ApiKey {credentials['api_key']}"
    elif "basic_auth" in credentials:
        session.auth = credentials["basic_auth"]
    if not settings.elasticsearch_verify_certs:
        session.verify = False
    elif settings.elasticsearch_ca_certs is not None:
        session.verify = str(settings.elasticsearch_ca_certs)
    return session


def wait_for_kibana(
    session: requests.Session,
    base_url: str,
    *,
    timeout: float,
    poll_interval: float,
    request_timeout: tuple[float, float],
    echo: Echo,
) -> None:
    """Poll /api/status until the overall level is `available`, or raise at the deadline."""
    deadline = time.monotonic() + timeout
    last_state, last_echo = "", float("-inf")
    echo(f"waiting up to {timeout:.0f}s for Kibana at {base_url}")
    while True:
        state = _status(session, f"{base_url}/api/status", request_timeout)
        if state == "available":
            echo("Kibana is available")
            return
        now = time.monotonic()
        if now >= deadline:
            raise KibanaSetupError(f"Kibana at {base_url} was not available after {timeout:.0f}s (last: {state})")
        if state != last_state or now - last_echo >= PROGRESS_EVERY:
            echo(f"Kibana not ready yet ({state}); {deadline - now:.0f}s left")
            last_state, last_echo = state, now
        time.sleep(min(poll_interval, max(deadline - now, 0.0)))


def _status(session: requests.Session, url: str, request_timeout: tuple[float, float]) -> str:
    """The overall level, or a short reason why there is none yet. Raises when waiting cannot help."""
    try:
        response = session.get(url, timeout=request_timeout)
    except requests.exceptions.SSLError as exc:
        # A subclass of ConnectionError, but no amount of waiting fixes a certificate.
        raise KibanaSetupError(f"TLS error talking to Kibana at {url}: {exc}") from exc
    except requests.exceptions.RequestException as exc:
        return f"not reachable: {type(exc).__name__}"
    if response.status_code in (401, 403):
        raise KibanaSetupError(
            f"Kibana refused the credentials (HTTP {response.status_code}); it authenticates with "
            "ELASTICSEARCH_API_KEY or ELASTICSEARCH_USERNAME/ELASTICSEARCH_PASSWORD"
        )
    try:
        overall = response.json()["status"]["overall"]
        level = overall["level"]
    except (ValueError, KeyError, TypeError):
        # Kibana answers 503 with a plain message while it boots.
        return f"HTTP {response.status_code}"
    summary = overall.get("summary")
    return level if level == "available" or not summary else f"{level}: {summary}"


def import_saved_objects(
    session: requests.Session,
    base_url: str,
    objects: list[dict[str, Any]],
    *,
    request_timeout: tuple[float, float],
) -> dict[str, Any]:
    payload = "".join(json.dumps(obj) + "\n" for obj in objects).encode()
    try:
        response = session.post(
            f"{base_url}/api/saved_objects/_import",
            params={"overwrite": "true"},
            files={"file": ("report-ingest.ndjson", payload, "application/ndjson")},
            timeout=request_timeout,
        )
    except requests.exceptions.RequestException as exc:
        raise KibanaSetupError(f"saved objects import failed: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict):
        message = body.get("message") if isinstance(body, dict) else None
        raise KibanaSetupError(
            f"Kibana refused the saved objects import (HTTP {response.status_code}): {message or response.text[:500]}"
        )
    # The import API answers 200 even when objects failed; only `success` tells.
    errors = [_describe_error(error) for error in body.get("errors") or []]
    if not body.get("success") or errors:
        raise KibanaSetupError(
            f"Kibana imported {body.get('successCount', 0)} of {len(objects)} saved objects; errors: "
            + "; ".join(errors or ["none reported"]),
            errors,
        )
    return {
        "imported": body.get("successCount", len(objects)),
        "objects": [f"{result['type']}/{result['id']}" for result in body.get("successResults") or []],
        "warnings": [warning.get("message", str(warning)) for warning in body.get("warnings") or []],
    }


def _describe_error(error: dict[str, Any]) -> str:
    title = (error.get("meta") or {}).get("title") or error.get("title") or ""
    detail = error.get("error") or {}
    what = detail.get("type", "unknown")
    if detail.get("references"):
        what += " " + ", ".join(f"{ref.get('type')}/{ref.get('id')}" for ref in detail["references"])
    if detail.get("message"):
        what += f" ({detail['message']})"
    return f"{error.get('type')}/{error.get('id')} {title!r}: {what}"


def setup_kibana(
    settings: Settings,
    *,
    assets_dir: Path | None = None,
    timeout: float = 300.0,
    poll_interval: float = 2.0,
    echo: Echo = print,
) -> dict[str, Any]:
    """Wait for Kibana, then import the saved objects; returns what was imported.

    Raises KibanaSetupError when Kibana does not become available within `timeout` seconds, rejects
    the credentials, or fails to import any object.
    """
    objects = load_saved_objects(assets_dir or default_assets_dir(settings), index_prefix=settings.index_prefix)
    base_url = settings.kibana_url.rstrip("/")
    request_timeout = (settings.connect_timeout, settings.elasticsearch_timeout)
    with kibana_session(settings) as session:
        wait_for_kibana(
            session, base_url, timeout=timeout, poll_interval=poll_interval, request_timeout=request_timeout, echo=echo
        )
        summary = import_saved_objects(session, base_url, objects, request_timeout=request_timeout)
    echo(f"imported {summary['imported']} Kibana saved objects: {', '.join(summary['objects'])}")
    for warning in summary["warnings"]:
        echo(f"warning from Kibana: {warning}")
    return summary
