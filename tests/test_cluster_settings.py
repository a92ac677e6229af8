"""REDIS_URL naming Sentinels, ELASTICSEARCH_URL listing nodes, and the replicas setting: parsed
once, refused in one line when malformed (the failover itself: tests/ha/)."""

from __future__ import annotations

import re

import pytest

from tests.helpers import cli
from workers.app import celery_config
from workers.clients import elasticsearch_client
from workers.es_nodes import redacted_nodes
from workers.index.indices import replica_settings
from workers.sentinel import Sentinels, SentinelUrlError, redis_client
from workers.settings import Secret, Settings, SettingsError

SENTINEL_URL = "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://10.0.0.2:26380;sentinel://10.0.0.3:26379"


def test_a_sentinel_url_names_every_sentinel_and_the_masters_password_and_database():
    sentinels = Sentinels.parse(SENTINEL_URL)
    assert sentinels.hosts == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26379))
    assert (sentinels.db, sentinels.password, sentinels.username) == (2, "s3cret", None)
    assert Sentinels.parse("redis://localhost:6379/0") is None


@pytest.mark.parametrize(("url", "named"), [("sentinel://a:26379;redis://b:6379", "redis://b:6379"),
                                           ("sentinel://:pw@a:26379/x", "database 'x'"),
                                           ("sentinel://:pw@a:port", "Port could not be cast"),
                                           # Without a port kombu would take 26379, Celery's backend 6379.
                                           ("sentinel://a:26379;sentinel://b", "sentinel://b")])
def test_a_malformed_sentinel_url_is_refused_naming_the_bad_part(url, named):
    with pytest.raises(SentinelUrlError, match=re.escape(named)):
        Sentinels.parse(url)
    with pytest.raises(SettingsError, match="REDIS_URL"):
        Settings(redis_url=url)


def test_with_sentinels_every_celery_component_asks_them_for_the_master():
    settings = Settings(redis_url=SENTINEL_URL, redis_sentinel_master="ri", redis_sentinel_password=Secret("sp"))
    config = celery_config(settings)
    assert config["broker_url"] == config["result_backend"] == SENTINEL_URL
    assert config["broker_transport"] == "workers.fixes.kombu_redis:SentinelTransport"
    for options in (config["broker_transport_options"], config["result_backend_transport_options"]):
        assert options["master_name"] == "ri" and options["sentinel_kwargs"]["password"] == "sp"
    # What was there before stays: redelivery timing, the result keys' prefix.
    assert config["broker_transport_options"]["visibility_timeout"] == settings.visibility_timeout
    assert "global_keyprefix" in config["result_backend_transport_options"]
    assert config["redbeat_redis_url"].startswith("redis-sentinel://")
    beat = config["redbeat_redis_options"]
    assert (beat["service_name"], beat["sentinels"][1], beat["password"], beat["db"]) == (
        "ri", ("10.0.0.2", 26380), "s3cret", 2)


def test_without_sentinels_the_celery_configuration_names_one_redis():
    config = celery_config(Settings(redis_url="redis://localhost:6379/0"))
    assert config["broker_transport"] == "workers.fixes.kombu_redis:Transport" and "master_name" not in config[
        "broker_transport_options"]


def test_the_projects_client_reaches_the_master_through_the_sentinels_with_tls_when_asked():
    client = redis_client(Settings(redis_url=SENTINEL_URL, redis_sentinel_master="ri", redis_sentinel_tls=True))
    pool = client.connection_pool
    assert pool.service_name == "ri"
    assert pool.connection_kwargs["password"] == "s3cret" and pool.connection_kwargs["db"] == 2
    assert pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    assert [s.connection_pool.connection_kwargs["host"] for s in pool.sentinel_manager.sentinels] == [
        "10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_elasticsearch_url_may_list_several_nodes_and_the_client_takes_them_all():
    settings = Settings(elasticsearch_url="http://a:9200, https://b:9201,http://c:9202/es")
    nodes = elasticsearch_client(settings).transport.node_pool.all()
    assert sorted((n.config.host, n.config.port) for n in nodes) == [("a", 9200), ("b", 9201), ("c", 9202)]


@pytest.mark.parametrize("url", ["http://a:9200,,http://b:9200", "http://a:9200,b:9200", "http://a:port"])
def test_a_malformed_node_list_is_refused(url):
    with pytest.raises(SettingsError, match="ELASTICSEARCH_URL"):
        Settings(elasticsearch_url=url)


def test_a_malformed_node_list_ends_the_command_in_one_line_naming_the_entry():
    result = cli({"ELASTICSEARCH_URL": "http://a:9200,htp://b:9200"}, "search", "anything")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: ELASTICSEARCH_URL: 'htp://b:9200' is not a node URL: write each as http(s)://host:port, "
        "separated by commas"]


def test_replicas_follow_the_cluster_by_default_or_are_fixed():
    assert Settings().elasticsearch_replicas == "auto"
    assert replica_settings("auto") == {"auto_expand_replicas": "0-1"}
    assert replica_settings(2) == {"auto_expand_replicas": "false", "number_of_replicas": 2}
    with pytest.raises(SettingsError):
        Settings(elasticsearch_replicas=-1)


def test_a_node_list_in_a_message_shows_every_node_without_credentials():
    assert redacted_nodes("https://u:pw@a:9200,https://u:pw@b:9200") == "https://***@a:9200,https://***@b:9200"


def test_beat_and_the_result_backend_reach_the_master_through_the_sentinels():
    from celery import Celery
    from redbeat.schedulers import get_redis as redbeat_redis

    app = Celery("sentinel-probe")
    app.conf.update(celery_config(Settings(redis_url=SENTINEL_URL, redis_sentinel_master="ri")))
    beat = redbeat_redis(app).connection_pool
    assert (beat.service_name, beat.connection_kwargs["password"], beat.connection_kwargs["db"]) == ("ri", "s3cret", 2)
    backend = app.backend
    assert type(backend).__name__ == "SentinelBackend" and backend._transport_options["master_name"] == "ri"
    sentinels = backend._get_sentinel_instance(**backend.connparams).sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380, 26379]
