"""deploy/compose.yaml and deploy/nginx.conf, checked without docker: the compose file parses and wires PostgreSQL,
an S3-compatible store, three shadowpi replicas built from the repository's Dockerfile and nginx; the nginx config
it mounts exists and balances over exactly those replicas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.backends.urls import S3URL, PostgresURL, parse_database_url, parse_storage_url
from proxy.config_load import build_config

DEPLOY = Path(__file__).parent.parent / "deploy"
REPLICAS = ["shadowpi-1", "shadowpi-2", "shadowpi-3"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_has_the_database_the_store_three_replicas_and_nginx(compose: dict[str, Any]):
    """The services: postgres, s3 (+ the one-shot bucket creation), the one-shot schema upgrade, three replicas
    and nginx; every replica is built from the repository's Dockerfile and waits for the schema and the bucket."""
    services = compose["services"]
    assert set(services) == {"postgres", "s3", "bucket", "schema", *REPLICAS, "nginx"}
    for name in [*REPLICAS, "schema"]:
        assert (DEPLOY / services[name]["build"] / "Dockerfile").is_file()
    for name in REPLICAS:
        assert services[name]["depends_on"] == {"schema": {"condition": "service_completed_successfully"},
                                                "bucket": {"condition": "service_completed_successfully"}}
    assert services["schema"]["entrypoint"][:3] == ["shadowpi", "db", "upgrade"]


@pytest.mark.parametrize("name", REPLICAS)
def test_every_replica_is_configured_for_the_cluster(compose: dict[str, Any], name: str):
    """Each replica's environment is a valid shadowpi configuration on PostgreSQL + S3 (parsed by shadowpi's own
    URL and config parsers), its credentials match the database's and the store's, and it advertises itself under
    its own service name on the port the image listens on."""
    services = compose["services"]
    env = services[name]["environment"]
    config = build_config({"database": {"url": env["SHADOWPI_DATABASE_URL"]},
                           "storage": {"url": env["SHADOWPI_STORAGE_URL"]},
                           "server": {"advertise_url": env["SHADOWPI_SERVER_ADVERTISE_URL"]}})
    database = parse_database_url("database.url", config.database.url)
    assert isinstance(database, PostgresURL)
    assert isinstance(parse_storage_url("storage.url", config.storage.url), S3URL)
    postgres = services["postgres"]["environment"]
    assert database.dsn == (f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/"
                            f"{postgres['POSTGRES_DB']}")
    store = services["s3"]["environment"]
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (store["MINIO_ROOT_USER"],
                                                                         store["MINIO_ROOT_PASSWORD"])
    assert env["AWS_ENDPOINT_URL_S3"] == "http://s3:9000"
    assert config.server.peer_url() == f"http://{name}:8080"
    bucket = env["SHADOWPI_STORAGE_URL"].removeprefix("s3://").split("/")[0]
    assert f"local/{bucket}" in services["bucket"]["command"][0]


def test_nginx_mounts_the_config_that_balances_over_the_replicas(compose: dict[str, Any]):
    """nginx mounts deploy/nginx.conf, which exists and names exactly the three replicas on port 8080, streams
    both ways (no buffering) and listens on the port compose publishes."""
    nginx = compose["services"]["nginx"]
    [mount] = nginx["volumes"]
    source, target, mode = mount.split(":")
    assert (target, mode) == ("/etc/nginx/nginx.conf", "ro")
    conf = (DEPLOY / source).read_text()
    assert re.findall(r"server (\S+):8080;", conf) == REPLICAS
    assert "proxy_buffering off;" in conf and "proxy_request_buffering off;" in conf
    assert nginx["ports"] == ["8080:8080"] and "listen 8080;" in conf
    assert sorted(nginx["depends_on"]) == REPLICAS
