"""Local report sites for the head-to-head benchmark, served from outside the measured processes.

- fast: every page straight from nginx (Debian's), no added latency; when nginx is
  missing, the small asyncio server below with no delay (and the report says so);
- slow: the asyncio server answering each request after a fixed delay, on several
  loopback addresses (127.0.0.2, .3, ...) so that every tool sees several hosts
  (Scrapy's per-domain limit keys on the host name, not the port).

Pages are tests/corpus.py's generated Refworld-layout reports, with their narrative
length varied so page sizes spread over about 3-15 KB, each at a unique URL, plus a
robots.txt with one rule that matches no page.

Run as a script, this module is that asyncio server:

    python benchmarks/sites.py --root DIR --delay 0.2 --bind 127.0.0.2 --bind 127.0.0.3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.corpus import report_page  # noqa: E402

ROBOTS = b"User-agent: *\nDisallow: /private/\n"
CONTENT_TYPES = {".html": b"text/html; charset=utf-8", ".txt": b"text/plain; charset=utf-8"}


def write_pages(root: Path, count: int) -> tuple[list[str], float]:
    """Write `count` report pages and robots.txt under root; return their paths and mean size."""
    paths, total = [], 0
    for i in range(count):
        page = report_page(i, padding=2 + 2 * (i % 9))
        target = root / page.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(page.html)
        paths.append(page.path)
        total += len(page.html)
    (root / "robots.txt").write_bytes(ROBOTS)
    return paths, total / max(count, 1)


@dataclass
class Site:
    kind: str
    server: str  # what serves it, for the report
    urls: list[str]
    hosts: list[str]
    latency: float
    mean_bytes: float
    per_host: int  # requests in flight per host, the same for every tool
    process: subprocess.Popen
    workdir: Path
    notes: list[str] = field(default_factory=list)

    @property
    def networks(self) -> list[str]:
        """The loopback addresses serving the site, as the CIDRs a crawl must be allowed to reach."""
        return sorted({f"{host.rsplit(':', 1)[0]}/32" for host in self.hosts})

    @property
    def total(self) -> int:
        """Requests in flight in total: what the per-host limit allows over all hosts."""
        return self.per_host * len(self.hosts)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    charset utf-8;
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/body;
    server {{ listen 127.0.0.1:{port}; root {root};{locations} }}
}}
"""


def _nginx_binary() -> str | None:
    # /usr/sbin is not on every user's PATH.
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _nginx(root: Path, workdir: Path) -> tuple[subprocess.Popen, int] | None:
    binary = _nginx_binary()
    if binary is None or os.geteuid() != 0:
        return None  # unprivileged nginx cannot use Debian's temp paths; the Python server will do
    from devtools.services import free_port

    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, root=root, locations=""))
    process = subprocess.Popen([binary, "-e", str(workdir / "error.log"), "-p", str(workdir), "-c", str(conf)],
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    import requests

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        try:
            if requests.get(f"http://127.0.0.1:{port}/robots.txt", timeout=1).ok:
                return process, port
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    return None


def _python_server(root: Path, binds: list[str], delay: float) -> tuple[subprocess.Popen, int]:
    argv = [sys.executable, __file__, "--root", str(root), "--delay", str(delay)]
    for address in binds:
        argv += ["--bind", address]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    line = process.stdout.readline()
    if not line.startswith("listening "):
        raise RuntimeError(f"the page server did not start: {line!r}")
    return process, int(line.split()[1])


def _workdir() -> tuple[Path, Path]:
    workdir = Path(tempfile.mkdtemp(prefix="ri-h2h-site-"))
    workdir.chmod(0o755)  # nginx's workers run as nobody
    root = workdir / "www"
    root.mkdir()
    return workdir, root


def fast_site(pages: int, per_host: int) -> Site:
    workdir, root = _workdir()
    paths, mean = write_pages(root, pages)
    notes = []
    if started := _nginx(root, workdir):
        process, port = started
        server = f"nginx ({_nginx_version()}), 1 worker process"
    else:
        process, port = _python_server(root, ["127.0.0.1"], 0.0)
        server = "Python asyncio server (nginx unavailable)"
        notes.append("nginx was not available: the fast site was served by the Python asyncio server")
    host = f"127.0.0.1:{port}"
    return Site("fast", server, [f"http://{host}{p}" for p in paths], [host], 0.0, mean, per_host, process, workdir,
                notes)


def slow_site(pages: int, hosts: int, latency: float, per_host: int) -> Site:
    workdir, root = _workdir()
    paths, mean = write_pages(root, pages)
    addresses = [f"127.0.0.{2 + i}" for i in range(hosts)]
    process, port = _python_server(root, addresses, latency)
    netlocs = [f"{a}:{port}" for a in addresses]
    urls = [f"http://{netlocs[i % hosts]}{p}" for i, p in enumerate(paths)]
    server = f"Python asyncio server, {latency * 1000:.0f} ms per response, {hosts} loopback hosts"
    return Site("slow", server, urls, netlocs, latency, mean, per_host, process, workdir)


def _nginx_version() -> str:
    out = subprocess.run([_nginx_binary(), "-v"], capture_output=True, text=True)
    return (out.stderr or out.stdout).strip().removeprefix("nginx version: ")


# --- the asyncio server --------------------------------------------------------------


def load_pages(root: Path) -> dict[str, tuple[bytes, bytes]]:
    return {"/" + str(p.relative_to(root)): (CONTENT_TYPES.get(p.suffix, b"application/octet-stream"), p.read_bytes())
            for p in root.rglob("*") if p.is_file()}


async def serve(root: Path, binds: list[str], delay: float) -> None:
    pages = load_pages(root)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].split(b"?")[0].decode("latin-1")
                content_type, body = pages.get(target, (b"text/html", b"<h1>Not found</h1>"))
                status = b"200 OK" if target in pages else b"404 Not Found"
                if delay:
                    await asyncio.sleep(delay)
                writer.write(b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                             % (status, content_type, len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    first = await asyncio.start_server(handle, binds[0], 0, backlog=1024)
    port = first.sockets[0].getsockname()[1]
    servers = [first] + [await asyncio.start_server(handle, a, port, backlog=1024) for a in binds[1:]]
    print(f"listening {port}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a directory of pages, each answer after --delay seconds.")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--bind", action="append", required=True, help="loopback address; repeat for more hosts")
    args = parser.parse_args()
    asyncio.run(serve(args.root, args.bind, args.delay))


if __name__ == "__main__":
    main()
