"""The read-only commands' small Elasticsearch client (workers/es_read.py), against local HTTP
stubs: requests as the full client sends them, a node that does not answer passed over, an
overloaded node asked again, errors by status. Its queries against a real node are the edition
and search tests (tests/test_editions.py, tests/test_search.py)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devtools.services import free_port
from workers.es_read import HttpError, ReadClient, TimedOut, Unreachable, status_of


class Stub:
    """A node that answers each request with the next of `answers` (status, body), and keeps what it got."""

    def __init__(self, answers: list[tuple[int, dict]]):
        self.answers, self.got = list(answers), []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                stub.got.append((self.path, json.loads(self.rfile.read(length)) if length else None))
                status, body = stub.answers.pop(0)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll: shutdown() waits for it.
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub(request):
    node = Stub(request.param)
    yield node
    node.close()


HITS = {"hits": {"hits": [{"_id": "a"}]}}


@pytest.mark.parametrize("stub", [[(200, HITS)]], indirect=True)
def test_a_node_that_does_not_answer_passes_the_request_to_the_next(stub) -> None:
    client = ReadClient([f"http://127.0.0.1:{free_port()}", stub.url], timeout=2, max_retries=1)
    found = client.search(index="reports", query={"match_all": {}}, from_=10, source=False, search_after=None,
                          source_includes=["title", "tier"])
    assert found == HITS
    # As Elasticsearch.search sends them: `from` and `_source` in the body, None left out,
    # `_source_includes` in the URL.
    assert stub.got == [("/reports/_search?_source_includes=title%2Ctier",
                         {"query": {"match_all": {}}, "from": 10, "_source": False})]


@pytest.mark.parametrize("stub", [[(503, {"error": "busy"}), (200, {"count": 3}),
                                   (404, {"error": {"type": "index_not_found_exception"}})]], indirect=True)
def test_an_overloaded_node_is_asked_again_and_an_error_status_is_told_by_its_status(stub) -> None:
    client = ReadClient([stub.url], timeout=2, max_retries=1)
    assert client.count(index="reports") == {"count": 3}
    with pytest.raises(HttpError) as raised:
        client.count(index="gone")
    assert status_of(raised.value) == 404 and "index_not_found_exception" in str(raised.value)
    assert status_of(ValueError("no status")) is None


def test_a_node_that_never_answers_times_out_and_the_commands_say_so_in_one_line(monkeypatch) -> None:
    from workers.cli.errors import service_error
    from workers.settings import get_settings

    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    monkeypatch.setenv("ELASTICSEARCH_URL", url)
    monkeypatch.setenv("ELASTICSEARCH_TIMEOUT", "0.2")
    get_settings.cache_clear()
    try:
        with pytest.raises(TimedOut) as raised:
            ReadClient([url], timeout=0.2, max_retries=0).count(index="reports")
        message = service_error(raised.value)
        assert f"Elasticsearch at {url} timed out after 0.2s" in message and "ELASTICSEARCH_TIMEOUT" in message
    finally:
        silent.close()
        get_settings.cache_clear()


def test_no_node_answering_is_unreachable_naming_the_last_node_asked() -> None:
    ports = [free_port(), free_port()]
    client = ReadClient([f"http://127.0.0.1:{port}" for port in ports], timeout=1, max_retries=2)
    with pytest.raises(Unreachable) as raised:
        client.count(index="reports")
    assert raised.value.url in {f"http://127.0.0.1:{port}" for port in ports}
