"""docker-compose.yml, .env.example and deploy/Dockerfile, checked without a Docker engine.

Each rule is a function returning its findings, run once on the real files and once on a small bad
example, so that a rule which stopped finding anything would fail too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from workers.settings import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
APP_DOCKERFILE = "deploy/Dockerfile"

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|ENCRYPTION_?KEY", re.IGNORECASE)
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt} and $NAME.
REFERENCE = re.compile(r"\$\{(?P<braced>[A-Za-z_]\w*)(?P<modifier>:?[-?+])?[^}]*\}|\$(?P<bare>[A-Za-z_]\w*)")
# An exact version (1.2.3, optionally with a suffix such as -slim); never latest, 7 or 7.4.
EXACT_TAG = re.compile(r"^v?\d+\.\d+\.\d+([.-][\w.-]+)?$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def references(text: str) -> list[tuple[str, str]]:
    """(variable, modifier) for each interpolation; `$$` is compose's escape and is left alone."""
    found = []
    for match in REFERENCE.finditer(text.replace("$$", "")):
        found.append((match["braced"] or match["bare"], match["modifier"] or ""))
    return found


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose.get("services") or {}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def unpinned_images(compose: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in services(compose).items():
        build = service.get("build")
        if build is not None:
            dockerfile = build.get("dockerfile") if isinstance(build, dict) else None
            if dockerfile != APP_DOCKERFILE:
                problems.append(f"{name}: builds from {dockerfile or 'a default Dockerfile'}, not {APP_DOCKERFILE}")
            if str(service.get("image", "")).endswith(":latest"):
                problems.append(f"{name}: tags its build as latest")
            continue
        image = str(service.get("image", ""))
        name_and_tag = DIGEST.sub("", image)
        # The tag follows the last colon after the last slash; a colon before it is a registry port.
        tag = name_and_tag.rsplit("/", 1)[-1].partition(":")[2]
        if "$" in image or not (EXACT_TAG.match(tag) or DIGEST.search(image)):
            problems.append(f"{name}: image {image or '(none)'} is not pinned to an exact version")
    return problems


def documented_variables(env_example: str) -> set[str]:
    return {line.split("=", 1)[0].strip() for line in env_example.splitlines() if re.match(r"^[A-Za-z_]\w*=", line)}


def undocumented_variables(compose_text: str, env_example: str) -> set[str]:
    return {name for name, _ in references(compose_text)} - documented_variables(env_example)


def uncommented_variables(env_example: str) -> list[str]:
    lines = env_example.splitlines()
    return [
        line.split("=", 1)[0]
        for index, line in enumerate(lines)
        if re.match(r"^[A-Za-z_]\w*=", line) and (index == 0 or not lines[index - 1].startswith("#"))
    ]


def healthcheck_gaps(compose: dict[str, Any]) -> list[str]:
    """Dependencies that others wait on (healthy, or completed) that cannot deliver that state."""
    all_services = services(compose)
    problems = []
    for name, service in all_services.items():
        depends_on = service.get("depends_on") or {}
        if isinstance(depends_on, list):
            depends_on = {dependency: {"condition": "service_started"} for dependency in depends_on}
        for dependency, spec in depends_on.items():
            target = all_services.get(dependency)
            condition = (spec or {}).get("condition", "service_started")
            if target is None:
                problems.append(f"{name}: depends on {dependency}, which is not a service")
            elif condition == "service_healthy":
                check = target.get("healthcheck") or {}
                if not check.get("test") or check.get("disable") or check.get("test") == ["NONE"]:
                    problems.append(f"{name}: waits for {dependency} to be healthy, but it has no healthcheck")
            elif condition == "service_completed_successfully" and str(target.get("restart", "no")) != "no":
                problems.append(f"{name}: waits for {dependency} to complete, but it restarts ({target['restart']})")
    return problems


def secret_problems(compose: dict[str, Any], compose_text: str) -> list[str]:
    """Secrets with a fallback value, or written into the file instead of taken from .env."""
    problems = [
        f"${{{name}}} must be required (${{{name}:?...}}), not defaulted or optional"
        for name, modifier in references(compose_text)
        if SECRET_NAME.search(name) and modifier not in (":?", "?")
    ]
    for name, service in services(compose).items():
        for key, value in environment(service).items():
            literal = REFERENCE.sub("", value.replace("$$", "")).strip(":@/ ")
            if SECRET_NAME.search(key) and literal:
                problems.append(f"{name}: {key} has a literal value in the compose file")
    return problems


def scaling_problems(compose: dict[str, Any], name: str) -> list[str]:
    service = services(compose).get(name)
    if service is None:
        return [f"no {name} service"]
    problems = []
    for key in ("container_name", "hostname"):
        if key in service:
            problems.append(f"{name}: {key} is fixed, so replicas would clash")
    for port in service.get("ports") or []:
        published = port.get("published") if isinstance(port, dict) else (str(port).rsplit(":", 1)[0] if ":" in str(port) else None)
        if published:
            problems.append(f"{name}: publishes host port {published}, which only one replica can bind")
    return problems


REDIS_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def default_value(value: str) -> str:
    """`value` as compose gives it when no variable is set: ${NAME:-default} is its default."""
    return re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", str(value))


def redis_memory_problems(compose: dict[str, Any]) -> list[str]:
    """Redis must be capped with no eviction (evicting would drop queues, locks and crawl options), and
    the workers' staging budget must leave room under the cap for the queues and crawl state."""
    problems = []
    staging = {int(default_value(environment(service)["STAGING_MAX_BYTES"]))
               for service in services(compose).values() if "STAGING_MAX_BYTES" in environment(service)}
    for name, service in services(compose).items():
        if not str(service.get("image", "")).startswith("redis:"):
            continue
        command = [default_value(part) for part in service.get("command") or []]
        options = dict(zip(command[1::2], command[2::2])) if command[:1] == ["redis-server"] else {}
        if options.get("--maxmemory-policy") != "noeviction":
            problems.append(f"{name}: Redis must run with --maxmemory-policy noeviction")
        cap = re.fullmatch(r"(\d+)([kmg]?b?)", options.get("--maxmemory", "").lower())
        if cap is None:
            problems.append(f"{name}: Redis has no --maxmemory cap")
        elif not staging or max(staging) * 4 > int(cap[1]) * REDIS_UNITS[cap[2]]:
            problems.append(f"{name}: STAGING_MAX_BYTES must be set, at most a quarter of --maxmemory")
    return problems


def dockerfile_problems(dockerfile: str) -> list[str]:
    instructions = [line.strip() for line in re.sub(r"\\\n", " ", dockerfile).splitlines()]
    instructions = [line for line in instructions if line and not line.startswith("#")]
    stages = [index for index, line in enumerate(instructions) if line.upper().startswith("FROM ")]
    problems = []
    if len(stages) < 2:
        problems.append("not a multi-stage build")
    final_stage = instructions[stages[-1] :] if stages else instructions
    if not any(re.search(r"--from=|from=\w", line) for line in final_stage):
        problems.append("the final stage takes nothing from a build stage")
    users = [line.split(None, 1)[1].strip() for line in final_stage if line.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the final stage runs as root")
    return problems


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def env_example() -> str:
    return ENV_EXAMPLE.read_text(encoding="utf-8")


BAD_COMPOSE = """
services:
  db:
    image: redis:latest
  search:
    image: docker.elastic.co/elasticsearch/elasticsearch:9.5
    environment:
      ELASTIC_PASSWORD: ${ELASTIC_PASSWORD:-changeme}
      API_TOKEN: hunter2
  worker:
    build: {context: ., dockerfile: Dockerfile.dev}
    container_name: worker
    ports: ["5555:5555"]
    environment:
      URL: ${UNDOCUMENTED_URL}
      ESCAPED: $$NOT_A_VARIABLE
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  migrate:
    image: alpine:3.20.3
    restart: always
"""


def test_images_are_pinned_or_built_from_the_dockerfile(compose) -> None:
    assert unpinned_images(compose) == []


def test_every_variable_is_documented_with_a_comment(compose_text, env_example) -> None:
    assert undocumented_variables(compose_text, env_example) == set()
    assert uncommented_variables(env_example) == []


def test_dependencies_can_reach_the_state_waited_for(compose) -> None:
    assert healthcheck_gaps(compose) == []
    waited_on_healthy = {
        dependency
        for service in services(compose).values()
        for dependency, spec in (service.get("depends_on") or {}).items()
        if spec.get("condition") == "service_healthy"
    }
    assert waited_on_healthy >= {"elasticsearch", "redis"}


def test_secrets_have_no_defaults(compose, compose_text, env_example) -> None:
    assert secret_problems(compose, compose_text) == []
    # The example must not ship usable secrets either.
    filled = [
        line for line in env_example.splitlines() if re.match(r"^[A-Za-z_]\w*=.", line) and SECRET_NAME.search(line.split("=")[0])
    ]
    assert filled == []


def test_worker_scales(compose) -> None:
    assert scaling_problems(compose, "worker") == []


def test_redis_is_capped_without_eviction_and_staging_fits_under_the_cap(compose) -> None:
    assert redis_memory_problems(compose) == []


def test_dockerfile_is_multi_stage_and_not_root() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text(encoding="utf-8")) == []


def test_setup_runs_templates_then_kibana_objects_once(compose) -> None:
    setup = services(compose)["setup"]
    assert str(setup["restart"]) == "no"
    script = " ".join(setup["command"])
    assert re.search(r"report-ingest setup && report-ingest kibana-setup\b", script), script
    for name in ("worker", "beat"):
        assert services(compose)[name]["depends_on"]["setup"]["condition"] == "service_completed_successfully"


def test_clients_verify_elasticsearch_with_the_generated_ca(compose) -> None:
    for name in ("setup", "worker", "beat", "flower"):
        env = environment(services(compose)[name])
        assert env["ELASTICSEARCH_URL"].startswith("https://"), name
        assert env["ELASTICSEARCH_CA_CERTS"] == "/certs/ca/ca.crt", name
        assert "ELASTICSEARCH_VERIFY_CERTS" not in env, name


def test_kibana_uses_its_own_service_account_token(compose) -> None:
    kibana = services(compose)["kibana"]
    env = environment(kibana)
    assert "ELASTICSEARCH_USERNAME" not in env and "ELASTICSEARCH_PASSWORD" not in env
    assert "ELASTICSEARCH_SERVICEACCOUNTTOKEN" in " ".join(kibana["command"])
    token_volume = "kibana-token:/tokens"
    assert any(v.startswith(token_volume) for v in kibana["volumes"])
    assert token_volume in services(compose)["es-users"]["volumes"]
    script = (REPO_ROOT / "deploy" / "elasticsearch" / "create-users.sh").read_text()
    assert "/_security/service/elastic/kibana/credential/token/" in script


def test_the_worker_role_cannot_manage_templates(compose) -> None:
    """A worker's credentials touch the project's indices only; templates are installed by setup."""
    script = (REPO_ROOT / "deploy" / "elasticsearch" / "create-users.sh").read_text()
    role = re.search(r'/_security/role/report_ingest "\{(.*?)\n\}"', script, re.S).group(1)
    cluster = re.search(r'\\"cluster\\": \[(.*?)\]', role).group(1)
    assert "manage_index_templates" not in cluster and "manage" not in cluster.replace("monitor", "")
    setup, worker = services(compose)["setup"], services(compose)["worker"]
    assert "report-ingest setup" in " ".join(setup["command"])
    assert environment(setup)["ELASTICSEARCH_USERNAME"] == "elastic"
    assert environment(worker)["ELASTICSEARCH_USERNAME"] == "report_ingest"


def test_the_checks_reject_a_bad_compose_file() -> None:
    bad = yaml.safe_load(BAD_COMPOSE)

    assert unpinned_images(bad) == [
        "db: image redis:latest is not pinned to an exact version",
        "search: image docker.elastic.co/elasticsearch/elasticsearch:9.5 is not pinned to an exact version",
        "worker: builds from Dockerfile.dev, not deploy/Dockerfile",
    ]
    assert undocumented_variables(BAD_COMPOSE, "# documented\nELASTIC_PASSWORD=\n") == {"UNDOCUMENTED_URL"}
    assert uncommented_variables("# documented\nA=1\nB=2\n") == ["B"]
    assert healthcheck_gaps(bad) == [
        "worker: waits for db to be healthy, but it has no healthcheck",
        "worker: waits for migrate to complete, but it restarts (always)",
    ]
    assert secret_problems(bad, BAD_COMPOSE) == [
        "${ELASTIC_PASSWORD} must be required (${ELASTIC_PASSWORD:?...}), not defaulted or optional",
        "search: API_TOKEN has a literal value in the compose file",
    ]
    assert scaling_problems(bad, "worker") == [
        "worker: container_name is fixed, so replicas would clash",
        "worker: publishes host port 5555, which only one replica can bind",
    ]
    assert redis_memory_problems(bad) == [
        "db: Redis must run with --maxmemory-policy noeviction",
        "db: Redis has no --maxmemory cap",
    ]
    capped = {"services": {"db": {"image": "redis:7.4.6", "command": [
        "redis-server", "--maxmemory", "${REDIS_MAXMEMORY:-1gb}", "--maxmemory-policy", "noeviction"]},
        "worker": {"environment": {"STAGING_MAX_BYTES": "${STAGING_MAX_BYTES:-536870912}"}}}}
    assert redis_memory_problems(capped) == ["db: STAGING_MAX_BYTES must be set, at most a quarter of --maxmemory"]


def test_the_dockerfile_check_rejects_a_single_stage_root_image() -> None:
    assert dockerfile_problems("FROM python:3.11.13-slim\nCOPY . /app\nRUN pip install /app\n") == [
        "not a multi-stage build",
        "the final stage takes nothing from a build stage",
        "the final stage runs as root",
    ]
    assert "the final stage runs as root" in dockerfile_problems(
        "FROM python:3.11.13-slim AS build\nFROM python:3.11.13-slim\nCOPY --from=build /w /w\nUSER 0:0\n"
    )


def _docker_compose_works() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _docker_compose_works(), reason="`docker compose` (the v2 plugin) is not installed")
def test_docker_compose_accepts_the_file(tmp_path: Path, env_example: str) -> None:
    # Every required secret gets a throwaway value, as a user's .env would give it.
    env_file = tmp_path / "test.env"
    env_file.write_text(re.sub(r"(?m)^([A-Za-z_]\w*)=$", r"\1=test-value-0123456789abcdef0123456789", env_example))
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
