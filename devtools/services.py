"""Local Redis and Elasticsearch for development and tests, with no Docker engine.

Redis is Debian's `redis-server`. Elasticsearch is the minimal 9.x distribution
from Maven Central (server and transport modules only), fetched with
`mvn dependency:copy`, unpacked into a cache directory and run on Java 21+.
Elasticsearch refuses to run as root, so as root the node runs as an
unprivileged system user that owns its data, logs and config copy.

Long because it is the whole life of both services (fetch, configure, start as the right user,
wait, stop, clean up) behind one `ensure_services`; split, its halves would share every helper.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Newest first: Maven Central serves only some 9.x builds of the integ-test zip.
ES_VERSIONS = ("9.5.4", "9.5.3", "9.4.6", "9.3.8", "9.2.8")
ES_ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
ES_USER = "report-ingest-es"
ES_HEAP_MB = 512
MIN_JAVA = 21


class ServiceError(RuntimeError):
    """A local service could not be provisioned or started; the message says why."""


@dataclass
class Service:
    name: str
    url: str
    process: subprocess.Popen | None
    workdir: Path

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def cache_dir() -> Path:
    """Where Elasticsearch is unpacked: outside the checkout, readable by the node's user."""
    if explicit := os.environ.get("REPORT_INGEST_CACHE"):
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/cache/report-ingest")
    return Path.home() / ".cache" / "report-ingest"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    check: Callable[[], bool], *, deadline: float, alive: Callable[[], str | None], what: str
) -> None:
    """Poll `check` until true; fail fast with `alive()`'s reason if the process died."""
    end = time.monotonic() + deadline
    delay = 0.05
    while time.monotonic() < end:
        if check():
            return
        reason = alive()
        if reason:
            raise ServiceError(f"{what} stopped while starting: {reason}")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    raise ServiceError(f"{what} did not become ready within {deadline:.0f}s")


# --- Redis ----------------------------------------------------------------------


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceError("redis-server not found: install it with `apt-get install redis-server`")
    return binary


def start_redis(workdir: Path, port: int | None = None, *, appendonly: bool = False,
                replica_of: int | None = None, password: str | None = None,
                options: dict[str, str] | None = None) -> Service:
    """redis-server on loopback; with `appendonly`, AOF with fsync every second, as in production;
    with `replica_of`, a replica of the Redis on that port; with `password`, asking for it (and
    giving it to its master); `options`, more of its configuration (TLS, say)."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    replica = ["--replicaof", "127.0.0.1", str(replica_of)] if replica_of else []
    auth = ["--requirepass", password, "--masterauth", password] if password else []
    return _run_redis([_redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                       "--save", "", "--appendonly", "yes" if appendonly else "no", "--appendfsync", "everysec",
                       "--logfile", str(workdir / "redis.log"), *replica, *auth,
                       *(arg for key, value in (options or {}).items() for arg in (f"--{key}", value))], port, workdir)


def start_sentinel(workdir: Path, port: int, master_name: str, master_port: int, *, quorum: int = 2,
                   down_after_ms: int = 1000, master_password: str | None = None,
                   password: str | None = None, options: dict[str, str] | None = None) -> Service:
    """A Redis Sentinel on loopback watching the master on `master_port` (Sentinel rewrites its
    config file, so each has its own directory); `password`: its own, which Sentinels share;
    `options`, more of its configuration."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "sentinel.conf"
    auth = (f"sentinel auth-pass {master_name} {master_password}\n" if master_password else "") + (
        f"requirepass {password}\nsentinel sentinel-pass {password}\n" if password else "")
    config.write_text(f"port {port}\nbind 127.0.0.1\ndir {workdir}\nlogfile {workdir / 'redis.log'}\n"
                      f"sentinel monitor {master_name} 127.0.0.1 {master_port} {quorum}\n"
                      f"sentinel down-after-milliseconds {master_name} {down_after_ms}\n"
                      f"sentinel failover-timeout {master_name} {down_after_ms * 10}\n{auth}"
                      + "".join(f"{key} {value}\n" for key, value in (options or {}).items()))
    return _run_redis([_redis_binary(), str(config), "--sentinel"], port, workdir, name="sentinel")


def _run_redis(command: list[str], port: int, workdir: Path, name: str = "redis") -> Service:
    log = workdir / "redis.log"
    process = subprocess.Popen(
        command,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )

    def ping() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                # One that asks for a password answers too: it is up.
                return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def alive() -> str | None:
        if process.poll() is None:
            return None
        return _tail(log) or f"exit code {process.returncode}"

    service = Service(name, f"redis://127.0.0.1:{port}/0", process, workdir)
    try:
        wait_for(ping, deadline=20, alive=alive, what=f"{name} on port {port}")
    except ServiceError:
        service.stop()  # one that never answered may still run, in a session of its own
        raise
    return service


# --- Elasticsearch ----------------------------------------------------------------


def java_version(java_home: Path) -> int | None:
    release = java_home / "release"
    if not release.is_file():
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(), re.MULTILINE)
    return int(match.group(1)) if match else None


def find_java_home() -> Path:
    """ES_JAVA_HOME if set, else the newest JDK 21+ under /usr/lib/jvm."""
    if explicit := os.environ.get("ES_JAVA_HOME"):
        home = Path(explicit)
        version = java_version(home)
        if version is None or version < MIN_JAVA:
            raise ServiceError(
                f"ES_JAVA_HOME={home} is Java {version or 'unknown'}; Elasticsearch 9 needs {MIN_JAVA}+"
            )
        return home
    found = sorted(
        ((java_version(p) or 0, p) for p in Path("/usr/lib/jvm").glob("*") if p.is_dir()),
        reverse=True,
    )
    if found and found[0][0] >= MIN_JAVA:
        return found[0][1]
    seen = ", ".join(f"{p.name} (Java {v})" for v, p in found) or "none"
    raise ServiceError(
        f"Elasticsearch 9 needs Java {MIN_JAVA}+; JDKs in /usr/lib/jvm: {seen}. Set ES_JAVA_HOME."
    )


def _unzip(archive: Path, target: Path) -> None:
    """Unpack keeping the executable bits, which zipfile.extractall drops."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = Path(zf.extract(info, target))
            mode = info.external_attr >> 16
            if mode and not info.is_dir():
                path.chmod(mode & 0o777)


def ensure_elasticsearch(echo: Callable[[str], None] = print) -> Path:
    """Return the home of an unpacked Elasticsearch 9.x, fetching it once with Maven."""
    root = cache_dir()
    for version in ES_VERSIONS:
        home = root / f"elasticsearch-{version}"
        if (home / "bin" / "elasticsearch").is_file():
            return home
    if shutil.which("mvn") is None:
        raise ServiceError("mvn not found: install Maven (`apt-get install maven`) to fetch Elasticsearch")
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    errors = []
    for version in ES_VERSIONS:
        artifact = ES_ARTIFACT.format(version=version)
        echo(f"fetching {artifact} with Maven ...")
        result = subprocess.run(
            ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={artifact}",
             f"-DoutputDirectory={downloads}"],
            capture_output=True, text=True, cwd=downloads,
        )
        archive = downloads / f"elasticsearch-{version}.zip"
        if result.returncode == 0 and archive.is_file():
            _unzip(archive, root)
            archive.unlink()
            return root / f"elasticsearch-{version}"
        errors.append(f"{version}: {_last_error_line(result.stdout + result.stderr)}")
    raise ServiceError("could not fetch Elasticsearch 9.x from Maven: " + "; ".join(errors))


def _last_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if "ERROR" in line] or text.splitlines() or ["?"]
    return lines[0][:300]


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(ES_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ES_USER],
            check=True, capture_output=True,
        )
        return pwd.getpwnam(ES_USER)


def _memory_available_mb() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) // 1024 if match else None


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def explain_es_failure(log_text: str) -> str:
    """Turn the node's last words into the reason a person can act on."""
    patterns = [
        (r"UnsupportedClassVersionError|requires Java|java version", "the Java version is too old (need 21+)"),
        (r"BindException|Address already in use|failed to bind", "the port is already in use"),
        (r"OutOfMemoryError|Cannot allocate memory|insufficient memory", "not enough memory for the heap"),
        (r"can not run elasticsearch as root", "it refuses to run as root"),
        (r"AccessDeniedException|Permission denied", "a file or directory is not writable by the node's user"),
        (r"bootstrap check failure", "a bootstrap check failed"),
    ]
    for pattern, reason in patterns:
        if re.search(pattern, log_text, re.IGNORECASE):
            return reason
    return "see the log below"


def start_elasticsearch(
    workdir: Path, port: int | None = None, *, heap_mb: int = ES_HEAP_MB,
    echo: Callable[[str], None] = print, deadline: float = 180.0, node_settings: dict[str, str] | None = None,
) -> Service:
    home = ensure_elasticsearch(echo)
    java_home = find_java_home()
    port = port or free_port()
    if _port_in_use(port):
        raise ServiceError(f"Elasticsearch cannot start: port {port} is already in use")
    available = _memory_available_mb()
    if available is not None and available < heap_mb + 256:
        raise ServiceError(
            f"Elasticsearch cannot start: {available} MiB free, the node needs {heap_mb + 256} MiB"
        )

    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config"
    if config.exists():
        shutil.rmtree(config)
    shutil.copytree(home / "config", config)
    for sub in ("data", "logs", "tmp"):
        (workdir / sub).mkdir(exist_ok=True)

    # A node of a cluster overrides the first two (a setting given None is left out).
    node = {"discovery.type": "single-node", "transport.port": "0", "xpack.security.enabled": "false",
            "network.host": "127.0.0.1", "http.port": str(port), "path.data": str(workdir / "data"),
            "path.logs": str(workdir / "logs"), "cluster.routing.allocation.disk.threshold_enabled": "false",
            "action.destructive_requires_name": "false", **(node_settings or {})}
    command = [str(home / "bin" / "elasticsearch"),
               *(arg for key, value in node.items() if value is not None for arg in ("-E", f"{key}={value}"))]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ES_JAVA_HOME": str(java_home),
        "ES_PATH_CONF": str(config),
        "ES_TMPDIR": str(workdir / "tmp"),
        "ES_JAVA_OPTS": f"-Xms{heap_mb}m -Xmx{heap_mb}m",
    }
    if os.geteuid() == 0:
        user = _ensure_user()
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        command = ["runuser", "-u", ES_USER, "--", "env", *(f"{k}={v}" for k, v in env.items()), *command]

    console = workdir / "console.log"
    with console.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/_cluster/health", timeout=2) as resp:
                return json.load(resp).get("status") in ("green", "yellow")
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def alive() -> str | None:
        if process.poll() is None:
            return None
        log = _tail(console, 25)
        return f"{explain_es_failure(log)} (exit code {process.returncode})\n{log}"

    echo(f"starting Elasticsearch {home.name.split('-')[-1]} on {url} (Java {java_version(java_home)}) ...")
    try:
        wait_for(healthy, deadline=deadline, alive=alive, what=f"Elasticsearch on port {port}")
    except ServiceError:
        Service("elasticsearch", url, process, workdir).stop()
        raise
    return Service("elasticsearch", url, process, workdir)


# --- long-running local services (report-ingest services up|down|status) ----------------

LOCAL_PORTS = {"redis": 6379, "elasticsearch": 9200}


def _state_file() -> Path:
    return cache_dir() / "run" / "services.json"


def _running() -> dict[str, dict]:
    try:
        state = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return {}
    alive = {}
    for name, info in state.items():
        try:
            os.kill(info["pid"], 0)
            alive[name] = info
        except (ProcessLookupError, PermissionError):
            continue
    return alive


def up(echo: Callable[[str], None] = print) -> str:
    """Start Redis on 6379 and Elasticsearch on 9200 in the background, unless already up."""
    running = _running()
    starters = {"redis": start_redis, "elasticsearch": start_elasticsearch}
    for name, start in starters.items():
        if name in running:
            continue
        port = LOCAL_PORTS[name]
        if _port_in_use(port):
            raise ServiceError(f"{name}: port {port} is in use by another program; stop it first")
        kwargs = {"echo": echo} if name == "elasticsearch" else {}
        service = start(cache_dir() / "run" / name, port, **kwargs)
        running[name] = {"url": service.url, "pid": service.process.pid, "workdir": str(service.workdir)}
        _state_file().write_text(json.dumps(running, indent=2))
    return status()


def down(echo: Callable[[str], None] = print) -> str:
    for name, info in _running().items():
        echo(f"stopping {name} (pid {info['pid']})")
        try:
            os.killpg(info["pid"], signal.SIGTERM)
        except ProcessLookupError:
            continue
    _state_file().unlink(missing_ok=True)
    return "stopped"


def status(echo: Callable[[str], None] = print) -> str:
    running = _running()
    return "\n".join(
        f"{name:14} {'up   ' + running[name]['url'] if name in running else 'down'}" for name in LOCAL_PORTS
    )
