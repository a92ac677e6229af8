"""The bundled demo site and the offline demo: sample report pages served locally, crawled end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

from devtools import editions
from workers.settings import REPO_ROOT

DEMO_SITE = REPO_ROOT / "deploy" / "demo-site" / "pages"
# Full-report PDFs of the demo site, served as /pdf/<name> (deploy/demo-site/build_pdf.py makes them).
DEMO_PDFS = REPO_ROOT / "deploy" / "demo-site" / "pdf"
DEMO_PORT = 8765


def _site_handler(directory: Path, pdfs: Path) -> type[BaseHTTPRequestHandler]:
    """Serve the pages listed in the site's manifest, each with its own Content-Type, the PDFs, the
    two editions of two countries (devtools/editions.py), and a sitemap of all of them."""
    manifest = json.loads((directory / "manifest.json").read_text())
    types = {f"/pages/{entry['file']}": entry.get("content_type") for entry in manifest}
    files: dict[str, Path | bytes] = {path: directory / path.removeprefix("/pages/") for path in types}
    for pdf in sorted(pdfs.glob("*.pdf")):
        types[f"/pdf/{pdf.name}"], files[f"/pdf/{pdf.name}"] = "application/pdf", pdf
    for path, body in editions.pages().items():
        types[path], files[path] = "text/html; charset=utf-8", body

    class Handler(BaseHTTPRequestHandler):
        # Headers and body in one segment: no 40 ms delayed-ACK stall per response.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/sitemap.xml":
                base = f"http://{self.headers.get('Host', '127.0.0.1')}"
                locs = "".join(f"<url><loc>{escape(base + p)}</loc></url>" for p in sorted(types))
                body = ('<?xml version="1.0" encoding="UTF-8"?><urlset '
                        f'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>').encode()
                self._send(200, "application/xml", body)
            elif self.path in types:
                found = files[self.path]
                self._send(200, types[self.path], found if isinstance(found, bytes) else found.read_bytes())
            else:
                self._send(404, "text/html", b"<h1>Not found</h1>")

        def _send(self, status: int, content_type: str | None, body: bytes) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def serve_demo_site(port: int = DEMO_PORT, directory: Path = DEMO_SITE, pdfs: Path = DEMO_PDFS) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), _site_handler(directory, pdfs))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_worker(concurrency: int = 2, log: Path | None = None, *, loglevel: str = "WARNING",
                 env: dict[str, str] | None = None, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """A `report-ingest worker` in its own process group, so stopping it stops its pool too."""
    out = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "worker", "-c", str(concurrency), "-l", loglevel, *extra],
        env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )


def wait_for_worker(process: subprocess.Popen, deadline: float = 60.0,
                    echo: Callable[[str], None] = print, log: Path | None = None,
                    node: str | None = None) -> None:
    """Until the worker answers a ping (`node`: that worker's name only, not any worker's)."""
    from workers.app import app

    def why() -> str:
        return "\n" + log.read_text(errors="replace")[-3000:] if log else ""

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with code {process.returncode}{why()}")
        if app.control.ping(timeout=1.0, destination=[node] if node else None):
            return
        echo("waiting for the worker ...")
    raise RuntimeError(f"the worker did not answer within {deadline:.0f}s{why()}")


def stop_worker(process: subprocess.Popen, grace: float = 30.0) -> None:
    """Warm shutdown (running tasks finish or are requeued), then a kill if it hangs."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
