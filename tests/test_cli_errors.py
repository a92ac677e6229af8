"""Every command, with Redis or Elasticsearch down, refusing the credentials or timing out:
one line naming the service, its URL (no secret) and what to do, and a non-zero exit."""

from __future__ import annotations

import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devtools.services import free_port, start_redis
from tests.helpers import cli

SECRET = "s3cret-pass"
# The service each command reaches first, and the arguments that make it do so.
COMMANDS = {
    "status": (["status"], "Redis"),
    "search": (["search", "forced labor"], "Elasticsearch"),
    "history": (["history", "Ghana"], "Elasticsearch"),
    "alerts": (["alerts"], "Elasticsearch"),
    "crawl": (["crawl", "http://127.0.0.1:9/report.html", "--no-wait"], "Redis"),
    "failures": (["failures"], "Elasticsearch"),
    "retry-failed": (["retry-failed", "--no-wait"], "Elasticsearch"),
    "indices": (["indices"], "Redis"),
    "reindex": (["reindex"], "Redis"),
}


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == "", result.stdout
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_services_down_give_one_line_naming_the_service_and_what_to_do(command):
    args, service = COMMANDS[command]
    redis_port, es_port = free_port(), free_port()  # nothing listens on either
    result = cli({"REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "ELASTICSEARCH_URL": f"http://127.0.0.1:{es_port}",
                  "INDEX_PREFIX": "never-created-"}, *args, timeout=60)
    line = one_error_line(result)
    url = f"redis://127.0.0.1:{redis_port}/0" if service == "Redis" else f"http://127.0.0.1:{es_port}"
    assert f"{service} at {url} is not reachable" in line, line
    assert "report-ingest services up" in line and ("REDIS_URL" if service == "Redis" else "ELASTICSEARCH_URL") in line


@pytest.fixture(scope="module")
def redis_with_password(tmp_path_factory):
    import redis

    service = start_redis(tmp_path_factory.mktemp("redis-auth"))
    port = int(service.url.rsplit(":", 1)[1].split("/")[0])
    redis.Redis(port=port).config_set("requirepass", SECRET)
    yield port
    service.stop()


@pytest.mark.parametrize("command", ["status", "crawl", "indices"])
@pytest.mark.parametrize("credentials", ["", f":wrong-{SECRET}@"], ids=["no-password", "wrong-password"])
def test_redis_refusing_the_credentials_gives_one_line_without_the_secret(redis_with_password, test_env,
                                                                          command, credentials):
    args, _ = COMMANDS[command]
    url = f"redis://{credentials}127.0.0.1:{redis_with_password}/0"
    line = one_error_line(cli({**test_env, "REDIS_URL": url}, *args, timeout=60))
    assert f"Redis at redis://{'***@' if credentials else ''}127.0.0.1:{redis_with_password}/0 refused the credentials" \
        in line, line
    assert "REDIS_URL" in line and SECRET not in line


class _Unauthorized(BaseHTTPRequestHandler):
    def _deny(self):
        body = b'{"error":{"type":"security_exception","reason":"unable to authenticate user"},"status":401}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("WWW-Authenticate", 'Basic realm="security"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _deny

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def es_401():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorized)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("command", ["search", "failures", "status", "indices", "retry-failed"])
def test_elasticsearch_refusing_the_credentials_gives_one_line_without_the_secret(es_401, test_env, command):
    args, _ = COMMANDS[command]
    host = es_401.removeprefix("http://")
    env = {**test_env, "ELASTICSEARCH_URL": f"http://elastic:{SECRET}@{host}", "ELASTICSEARCH_PASSWORD": SECRET}
    line = one_error_line(cli(env, *args, timeout=60))
    assert f"Elasticsearch at http://***@{host} refused the credentials (HTTP 401)" in line, line
    assert "ELASTICSEARCH_API_KEY" in line and SECRET not in line


def test_elasticsearch_timing_out_gives_one_line():
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        line = one_error_line(cli({"ELASTICSEARCH_URL": url, "ELASTICSEARCH_TIMEOUT": "0.5"}, "failures", timeout=60))
        assert f"Elasticsearch at {url} timed out after 0.5s" in line and "ELASTICSEARCH_TIMEOUT" in line, line
    finally:
        silent.close()
