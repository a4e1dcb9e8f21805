"""What Compose renders for the shipped project names (`config` creates nothing).

Every row of the spec's tables that the configuration alone decides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stack_tui.core import compose
from stack_tui.core.environments import Platform

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    platform = Platform(root=REPO, env_file=REPO / ".env.example")
    return {name: compose.render_config(platform.env(name)) for name in ("dev", "prod")}


def test_volumes_are_the_specs(rendered: dict[str, dict[str, Any]]) -> None:
    assert [v["name"] for v in rendered["dev"]["volumes"].values()] == [
        "ai-agent-platform-dev_postgres_data_dev"
    ]
    assert [v["name"] for v in rendered["prod"]["volumes"].values()] == [
        "ai-agent-platform-prod_postgres_data"
    ]
    assert rendered["dev"]["name"] == "ai-agent-platform-dev"
    assert rendered["prod"]["name"] == "ai-agent-platform-prod"


def test_databases_are_the_specs(rendered: dict[str, dict[str, Any]]) -> None:
    dev, prod = rendered["dev"]["services"], rendered["prod"]["services"]
    assert dev["postgres"]["environment"]["POSTGRES_DB"] == "agent_db_dev"
    assert prod["postgres"]["environment"]["POSTGRES_DB"] == "agent_db"
    assert dev["agent"]["environment"]["DATABASE_URL"].endswith("/agent_db_dev")
    assert prod["agent"]["environment"]["DATABASE_URL"].endswith("/agent_db")


def _bind_sources(config: dict[str, Any]) -> set[str]:
    return {
        str(Path(mount["source"]).relative_to(REPO))
        for service in config["services"].values()
        for mount in service.get("volumes", [])
        if mount["type"] == "bind" and mount["source"].startswith(str(REPO))
    }


def test_bind_mounts_are_the_specs(rendered: dict[str, dict[str, Any]]) -> None:
    assert _bind_sources(rendered["dev"]) == {"data/qdrant_dev", "data/openwebui_dev"}
    assert _bind_sources(rendered["prod"]) == {"data/qdrant", "data/openwebui", "data/letsencrypt"}


def test_services_traefik_only_in_prod(rendered: dict[str, dict[str, Any]]) -> None:
    common = {"postgres", "qdrant", "openwebui", "agent"}
    assert set(rendered["dev"]["services"]) == common
    assert set(rendered["prod"]["services"]) == common | {"traefik"}


def test_only_traefik_publishes_ports(rendered: dict[str, dict[str, Any]]) -> None:
    for env in ("dev", "prod"):
        for name, service in rendered[env]["services"].items():
            if name != "traefik":
                assert not service.get("ports"), (env, name)
    ports = rendered["prod"]["services"]["traefik"]["ports"]
    assert sorted((p["target"], p["published"]) for p in ports) == [(80, "80"), (443, "443")]


def test_domains_agent_environment_restart_reservations(
    rendered: dict[str, dict[str, Any]],
) -> None:
    dev, prod = rendered["dev"]["services"], rendered["prod"]["services"]
    assert (
        "agent-dev.example.com"
        in dev["openwebui"]["labels"]["traefik.http.routers.dev-openwebui.rule"]
    )
    assert (
        "agent.example.com"
        in prod["openwebui"]["labels"]["traefik.http.routers.prod-openwebui.rule"]
    )
    assert dev["agent"]["environment"]["AGENT_ENVIRONMENT"] == "development"
    assert prod["agent"]["environment"]["AGENT_ENVIRONMENT"] == "production"
    for name in dev:
        assert dev[name].get("restart", "no") == "no", name
        assert "deploy" not in dev[name], name
    for name in prod:
        assert prod[name]["restart"] == "unless-stopped", name
        assert prod[name]["deploy"]["resources"]["reservations"], name


def test_routers_are_env_prefixed_and_networks_full_names(
    rendered: dict[str, dict[str, Any]],
) -> None:
    for env in ("dev", "prod"):
        for service in rendered[env]["services"].values():
            labels = service.get("labels", {})
            routers = {k.split(".")[3] for k in labels if k.startswith("traefik.http.routers.")}
            assert all(r.startswith(f"{env}-") for r in routers), routers
            if labels:
                assert labels["traefik.docker.network"] == f"ai-agent-platform-{env}_platform"


def test_healthchecks_logging_headers_identical(rendered: dict[str, dict[str, Any]]) -> None:
    dev, prod = rendered["dev"]["services"], rendered["prod"]["services"]
    for name in dev:
        assert dev[name]["healthcheck"] == prod[name]["healthcheck"], name
        assert dev[name]["logging"] == prod[name]["logging"], name
        assert dev[name]["logging"]["driver"] == "json-file"
    assert prod["traefik"]["logging"] == dev["postgres"]["logging"]

    def headers(labels: dict[str, str], env: str) -> dict[str, str]:
        prefix = f"traefik.http.middlewares.{env}-security-headers."
        return {k.removeprefix(prefix): v for k, v in labels.items() if k.startswith(prefix)}

    dev_headers = headers(dev["openwebui"]["labels"], "dev")
    assert dev_headers and dev_headers == headers(prod["openwebui"]["labels"], "prod")
