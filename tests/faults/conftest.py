"""The fault suite's harness: its own Redis (AOF on, so it can be restarted and killed), an
Elasticsearch node it may stop, a local site, and a fresh worker and index prefix per scenario.

Every scenario prints one summary line (run pytest with -s to see them, or read the
`faults` section pytest prints at the end).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools import services as devservices
from tests.faults.helpers import scenario_on
from tests.helpers import ES_NODE_SETTINGS, point_app_at
from workers.clients import reset_clients

@dataclass
class RestartableRedis:
    """redis-server with AOF everysec on a fixed port and data directory."""

    workdir: Path
    port: int
    service: devservices.Service | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.service = devservices.start_redis(self.workdir, self.port, appendonly=True)
        reset_clients()  # this process's pooled connections died with the old server
        point_app_at(self.url)

    def shutdown(self) -> None:
        """Graceful: Redis writes its AOF and exits."""
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown"], capture_output=True, timeout=30)
        self.service.process.wait(30)

    def kill(self) -> None:
        os.killpg(self.service.process.pid, signal.SIGKILL)
        self.service.process.wait(30)

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


@pytest.fixture(scope="session")
def fault_redis():
    server = RestartableRedis(Path(tempfile.mkdtemp(prefix="ri-fault-redis-")), devservices.free_port())
    server.start()
    yield server
    server.stop()


@dataclass
class StoppableElasticsearch:
    """The session's node when this run started it, else a node of the fault suite's own."""

    service: devservices.Service
    # The session's services by kind, when the node is the session's: its entry follows a
    # restart, so the session's teardown stops the node that runs, not the one stopped here.
    session_started: dict | None = None

    @property
    def url(self) -> str:
        return self.service.url

    def stop(self) -> None:
        self.service.stop()

    def start(self) -> None:
        port = int(self.service.url.rsplit(":", 1)[1])
        self.service = devservices.start_elasticsearch(self.service.workdir, port, echo=lambda m: None,
                                                       node_settings=ES_NODE_SETTINGS)
        if self.session_started is not None:
            self.session_started["elasticsearch"] = self.service


@pytest.fixture(scope="session")
def fault_elasticsearch(session_services):
    if (managed := session_services["started"].get("elasticsearch")) is not None:
        yield StoppableElasticsearch(managed, session_services["started"])
        return
    own = StoppableElasticsearch(devservices.start_elasticsearch(
        Path(tempfile.mkdtemp(prefix="ri-fault-es-")), echo=lambda m: None, node_settings=ES_NODE_SETTINGS))
    yield own
    own.stop()


@pytest.fixture
def scenario(fault_redis, fault_elasticsearch, session_services, request):
    """A clean state per scenario: an empty Redis, a fresh index prefix, a new worker and site."""
    with scenario_on(fault_redis, fault_elasticsearch, getattr(request.module, "EXTRA_ENV", {}),
                     session_services["urls"]["REDIS_URL"]) as case:
        yield case
