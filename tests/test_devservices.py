import dataclasses
import os

import pytest

from devtools import services as devservices
from workers.settings import Settings, SettingsError


@pytest.mark.parametrize("log, reason", [
    ("java.lang.UnsupportedClassVersionError: org/elasticsearch/...", "Java version"),
    ("BindException: Address already in use", "port is already in use"),
    ("java.lang.OutOfMemoryError: Java heap space", "memory"),
    ("java.lang.RuntimeException: can not run elasticsearch as root", "root"),
    ("something else entirely", "see the log"),
])
def test_start_failures_are_explained(log, reason):
    assert reason in devservices.explain_es_failure(log)


def test_old_java_is_refused(monkeypatch, tmp_path):
    (tmp_path / "release").write_text('JAVA_VERSION="17.0.15"\n')
    monkeypatch.setenv("ES_JAVA_HOME", str(tmp_path))
    with pytest.raises(devservices.ServiceError, match="Java 17.*needs 21"):
        devservices.find_java_home()


def test_port_in_use_is_refused_before_starting(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(devservices.ServiceError, match="already in use"):
            devservices.start_elasticsearch(tmp_path, busy.getsockname()[1], echo=lambda m: None)


def test_settings_from_environment(monkeypatch):
    monkeypatch.delenv("ELASTICSEARCH_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://cache:6380/2")
    monkeypatch.setenv("ELASTICSEARCH_VERIFY_CERTS", "false")
    monkeypatch.setenv("MAX_PAGE_BYTES", "1000")
    s = Settings.from_env(os.environ)
    assert (s.redis_url, s.elasticsearch_verify_certs, s.max_page_bytes) == ("redis://cache:6380/2", False, 1000)
    assert Settings(redis_url="x").elasticsearch_url == "http://localhost:9200"
    with pytest.raises(ValueError):
        Settings(index_prefix="Bad-")
    with pytest.raises(ValueError):
        Settings(max_page_bytes=0)


def test_env_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("# local\nexport REDIS_URL='redis://from-file:6379/0'\nINDEX_PREFIX=dev-\n"
                        'ELASTICSEARCH_PASSWORD="p w"\nELASTICSEARCH_CA_CERTS=\n')
    s = Settings.from_env({"index_prefix": "env-"}, env_file)
    assert (s.redis_url, s.index_prefix, s.elasticsearch_ca_certs) == ("redis://from-file:6379/0", "env-", None)
    assert s.elasticsearch_password.get_secret_value() == "p w" and "p w" not in repr(s)
    with pytest.raises(SettingsError, match="REDIS_TIMEOUT"):
        Settings.from_env({"REDIS_TIMEOUT": "soon"})


def test_every_setting_reads_back_from_the_environment_as_its_default():
    # A field of a type the reader cannot parse fails here, not in a deployment's first command.
    defaults = Settings()
    for field in dataclasses.fields(Settings):
        value = getattr(defaults, field.name)
        text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        assert getattr(Settings.from_env({field.name.upper(): text}), field.name) == value, field.name


def test_each_xdist_process_gets_its_own_database_of_a_given_redis():
    from tests.conftest import own_database

    assert own_database("redis://:pw@127.0.0.1:6379/0", "") == "redis://:pw@127.0.0.1:6379/0"
    assert own_database("redis://:pw@127.0.0.1:6379/0", "gw1") == "redis://:pw@127.0.0.1:6379/1"
    assert own_database("redis://127.0.0.1:6379", "gw0") == "redis://127.0.0.1:6379/0"
    assert own_database("redis://127.0.0.1:6379/4", "gw1") == "redis://127.0.0.1:6379/5"
