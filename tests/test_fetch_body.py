"""Reading a body against a hostile or broken server: drips, resets, early closes, bad encodings."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.site import RESET, LocalSite
from workers.crawl.http import OPEN_POLICY, FetchError, fetch
from workers.crawl.netpolicy import vetted_session
from workers.urls import PageURL

# The test's own bound on a fetch whose deadline is 1 + 2 = 3 s; far beyond it means not cut.
BOUNDED_WAIT = 30.0


def drip(total: int):
    def body():
        for _ in range(total):
            yield b"x"
            time.sleep(1)
    return lambda _req: (200, {"Content-Type": "text/html", "Content-Length": str(total)}, body())


def then_reset(_req):
    def body():
        yield b"<html>" + b"x" * 5000
        time.sleep(0.3)  # let the headers and the first bytes arrive: the reset comes mid-body
        yield RESET
    return 200, {"Content-Type": "text/html", "Content-Length": "100000"}, body()


def then_close(_req):
    headers = {"Content-Type": "text/html", "Content-Length": "100000", "Connection": "close"}
    return 200, headers, [b"<html>" + b"x" * 5000]


@pytest.fixture(scope="module")
def site():
    s = LocalSite()
    s.routes |= {
        "/drip": drip(600),
        "/reset": then_reset,
        "/short": then_close,
        "/bad-gzip": lambda _r: (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"},
                                 b"\x1f\x8b\x08\x00not really gzip" * 10),
    }
    yield s
    s.close()


def fetch_in_thread(url: str) -> tuple[threading.Thread, dict]:
    """Run a fetch with a 1 s connect and 2 s read timeout; the test bounds its own wait."""
    outcome: dict = {}

    def run():
        try:
            outcome["page"] = fetch(vetted_session(), PageURL.of(url), connect_timeout=1, read_timeout=2,
                                    max_bytes=1_000_000, max_redirects=0, policy=OPEN_POLICY)
        except FetchError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)  # a fetch that is never cut must not block exit
    thread.start()
    thread.join(BOUNDED_WAIT)
    return thread, outcome


def test_slow_drip_body_is_cut_at_the_read_deadline(site):
    thread, outcome = fetch_in_thread(site.url("/drip"))
    assert not thread.is_alive(), "a body dripping a byte a second was not cut at the read deadline"
    assert outcome["error"].reason == "timeout"
    assert "deadline" in str(outcome["error"])


def test_slow_drip_headers_are_cut_at_the_read_deadline():
    """Headers dripped a byte a second, each byte inside the per-read timeout, are bounded too."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not stop.wait(1):
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    try:
        thread, outcome = fetch_in_thread(f"http://127.0.0.1:{server.getsockname()[1]}/")
        assert not thread.is_alive(), "headers dripping a byte a second were not cut at the deadline"
        assert outcome["error"].reason == "timeout"
    finally:
        stop.set()
        server.close()


@pytest.mark.parametrize("path, reason, retryable", [
    ("/reset", "connection_reset", True),
    ("/short", "incomplete_body", True),
    ("/bad-gzip", "bad_content_encoding", False),
])
def test_mid_body_errors_have_their_own_reason(site, path, reason, retryable):
    from workers.crawl.http import RetryableFetchError

    thread, outcome = fetch_in_thread(site.url(path))
    assert not thread.is_alive()
    error = outcome["error"]
    assert error.reason == reason, str(error)
    assert isinstance(error, RetryableFetchError) == retryable
