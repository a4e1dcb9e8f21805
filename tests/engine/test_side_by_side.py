"""Dev and prod deployed side by side from compose/: every spec row the engine can show."""

from __future__ import annotations

from typing import Any

import docker
import pytest

from stack_tui.core import engine
from stack_tui.core.environments import Platform
from stack_tui.ops.deploy import deploy
from stack_tui.ops.events import Result
from support import psql

pytestmark = pytest.mark.engine


def deploy_ok(platform: Platform, name: str) -> Result:
    events = list(deploy(platform, platform.env(name), accept_new_volumes=True, wait_timeout=90))
    result = events[-1]
    assert isinstance(result, Result)
    assert result.ok, (result.summary, result.details)
    return result


def containers(client: docker.DockerClient, project: str) -> dict[str, Any]:
    return {c.labels[engine.SERVICE_LABEL]: c for c in engine.project_containers(client, project)}


def test_dev_and_prod_side_by_side(platform: Platform, engine_client: docker.DockerClient) -> None:
    dev, prod = platform.dev, platform.prod

    deploy_ok(platform, "dev")
    assert engine.volume_exists(engine_client, dev.postgres_volume)
    assert not engine.volume_exists(engine_client, prod.postgres_volume), "dev made prod's volume"
    assert engine.project_containers(engine_client, prod.project) == []

    result = deploy_ok(platform, "prod")
    assert set(result.data["services"]) == {"postgres", "qdrant", "openwebui", "agent", "traefik"}
    assert engine.volume_exists(engine_client, prod.postgres_volume)
    volumes = {
        v.name
        for v in engine_client.volumes.list(
            filters={"label": f"{engine.PROJECT_LABEL}={dev.project}"}
        )
    }
    assert volumes == {f"{dev.project}_postgres_data_dev"}, "prod created a volume in dev"

    dev_c, prod_c = containers(engine_client, dev.project), containers(engine_client, prod.project)
    assert set(dev_c) == {"postgres", "qdrant", "openwebui", "agent"}
    assert set(prod_c) == set(dev_c) | {"traefik"}

    # Data isolation: each Postgres has its own database, in its own volume.
    assert psql(platform, "dev", "SELECT current_database()") == "agent_db_dev"
    assert psql(platform, "prod", "SELECT current_database()") == "agent_db"
    assert "agent_db" not in psql(platform, "dev", "SELECT datname FROM pg_database").split()
    assert "agent_db_dev" not in psql(platform, "prod", "SELECT datname FROM pg_database").split()
    assert _volume_of(dev_c["postgres"]) == f"{dev.project}_postgres_data_dev"
    assert _volume_of(prod_c["postgres"]) == f"{prod.project}_postgres_data"

    # Bind mounts under the data directory.
    data = platform.data
    assert _bind(dev_c["qdrant"]) == str(data / "qdrant_dev")
    assert _bind(dev_c["openwebui"]) == str(data / "openwebui_dev")
    assert _bind(prod_c["qdrant"]) == str(data / "qdrant")
    assert _bind(prod_c["openwebui"]) == str(data / "openwebui")
    assert str(data / "letsencrypt") in _binds(prod_c["traefik"])

    for name, container in {
        **{f"dev/{k}": v for k, v in dev_c.items()},
        **{f"prod/{k}": v for k, v in prod_c.items()},
    }.items():
        host = container.attrs["HostConfig"]
        published = {k: v for k, v in (host.get("PortBindings") or {}).items() if v}
        if name == "prod/traefik":
            assert set(published) == {"80/tcp", "443/tcp"}
        else:
            assert not published, f"{name} publishes host ports: {published}"
        log = host["LogConfig"]
        assert log == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}, name
        if name.startswith("dev/"):
            assert host["RestartPolicy"]["Name"] in ("", "no"), name
            assert host["MemoryReservation"] == 0, name
        else:
            assert host["RestartPolicy"]["Name"] == "unless-stopped", name
            assert host["MemoryReservation"] > 0, name

    for service in dev_c:
        assert (
            dev_c[service].attrs["Config"]["Healthcheck"]["Test"]
            == prod_c[service].attrs["Config"]["Healthcheck"]["Test"]
        ), service
        assert dev_c[service].attrs["State"]["Health"]["Status"] == "healthy", service

    assert "AGENT_ENVIRONMENT=development" in dev_c["agent"].attrs["Config"]["Env"]
    assert "AGENT_ENVIRONMENT=production" in prod_c["agent"].attrs["Config"]["Env"]
    assert dev_c["openwebui"].labels["traefik.docker.network"] == dev.network
    assert prod_c["openwebui"].labels["traefik.docker.network"] == prod.network
    assert "traefik.http.routers.dev-openwebui.rule" in dev_c["openwebui"].labels
    assert "traefik.http.routers.prod-openwebui.rule" in prod_c["openwebui"].labels

    # The prod Traefik routes dev: it joined the dev network.
    prod_c["traefik"].reload()
    assert dev.network in prod_c["traefik"].attrs["NetworkSettings"]["Networks"]


def _volume_of(container: Any) -> str:
    return next(m["Name"] for m in container.attrs["Mounts"] if m["Type"] == "volume")


def _binds(container: Any) -> list[str]:
    return [m["Source"] for m in container.attrs["Mounts"] if m["Type"] == "bind"]


def _bind(container: Any) -> str:
    (source,) = _binds(container)
    return source
