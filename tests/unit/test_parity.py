"""Parity, drift and hygiene rules on plain data.

The configs are rendered once from the real compose files (rendering needs only
the compose binary, no engine) and then mutated, so each row is seen failing
with the right values while every other row still passes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stack_tui.core import compose, parity
from stack_tui.core.environments import Platform
from stack_tui.core.parity import (
    CheckReport,
    CheckRow,
    Deployed,
    EnvState,
    Orphan,
    TraefikAttachment,
)
from stack_tui.ops.check import run_checks
from support import TEST_SECRETS, make_platform

Configs = dict[str, dict[str, Any]]
DOMAINS = {"dev": "agent-dev.test.invalid", "prod": "agent.test.invalid"}


@pytest.fixture(scope="module")
def test_platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    return make_platform(tmp_path_factory.mktemp("parity"))


@pytest.fixture(scope="module")
def rendered(test_platform: Platform) -> Configs:
    return {name: compose.render_config(test_platform.env(name)) for name in ("dev", "prod")}


def structural(platform: Platform, configs: Configs) -> list[CheckRow]:
    return parity.structural_rows(
        configs["dev"], configs["prod"], platform.dev, platform.prod, DOMAINS
    )


def failing(rows: list[CheckRow]) -> dict[str, CheckRow]:
    return {row.name: row for row in rows if not row.ok}


def test_the_shipped_files_pass_every_structural_row(
    test_platform: Platform, rendered: Configs
) -> None:
    rows = structural(test_platform, rendered)
    assert failing(rows) == {}
    assert {row.section for row in rows} == {parity.SAME, parity.DIFFERENT}
    assert len(rows) == 15


def _set(path: str, value: Any) -> Callable[[Configs], None]:
    """A mutation: set `env.key.key...` (dots; a label key is the last part after 'labels.')."""

    def mutate(configs: Configs) -> None:
        head, _, label = path.partition(".labels.")
        keys = head.split(".")
        node: Any = configs
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if label:
            node = node.setdefault(keys[-1], {}).setdefault("labels", {})
            keys = [label]
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value

    return mutate


def _rename_dev_router(configs: Configs) -> None:
    labels = configs["dev"]["services"]["agent"]["labels"]
    for key in [k for k in labels if k.startswith("traefik.http.routers.dev-agent.")]:
        labels[key.replace(".dev-agent.", ".agent.")] = labels.pop(key)


def _extra_prod_service(configs: Configs) -> None:
    prod = configs["prod"]["services"]
    prod["worker"] = copy.deepcopy(prod["qdrant"])
    prod["worker"]["volumes"] = []


def _share_prod_qdrant_data(configs: Configs) -> None:
    prod_volumes = configs["prod"]["services"]["qdrant"]["volumes"]
    configs["dev"]["services"]["qdrant"]["volumes"] = copy.deepcopy(prod_volumes)


def _traefik_in_dev(configs: Configs) -> None:
    traefik = copy.deepcopy(configs["prod"]["services"]["traefik"])
    for key in ("ports", "volumes", "deploy", "restart"):
        traefik.pop(key)
    configs["dev"]["services"]["traefik"] = traefik


SECRET = TEST_SECRETS["POSTGRES_PASSWORD"]

BREAKS: list[tuple[str, Callable[[Configs], None], str, list[str], list[str]]] = [
    ("a service only in prod", _extra_prod_service, "Services", ["agent, openwebui"], ["worker"]),
    (
        "a host port on a dev service",
        _set(
            "dev.services.openwebui.ports",
            [{"target": 8080, "published": "18080", "protocol": "tcp", "mode": "ingress"}],
        ),
        "Port exposure",
        ["openwebui 18080->8080/tcp"],
        ["traefik"],
    ),
    (
        "a host port on a prod service besides Traefik",
        _set("prod.services.agent.ports", [{"target": 8000, "published": "8000"}]),
        "Port exposure",
        ["none"],
        ["agent 8000->8000/tcp"],
    ),
    (
        "the prod Traefik publishing its dashboard",
        _set("prod.services.traefik.ports", [{"target": 8080, "published": "8080"}]),
        "Port exposure",
        ["none"],
        ["traefik 8080->8080/tcp"],
    ),
    (
        "a differing healthcheck interval",
        _set("prod.services.agent.healthcheck.interval", "30s"),
        "Health checks",
        ["agent: curl --silent --fail", "interval=1s"],
        ["interval=30s"],
    ),
    (
        "a differing healthcheck command",
        _set("dev.services.qdrant.healthcheck.test", ["CMD", "true"]),
        "Health checks",
        ["qdrant: true ["],
        ["qdrant: bash -c"],
    ),
    (
        "a differing security header",
        _set(
            "prod.services.openwebui.labels."
            "traefik.http.middlewares.prod-security-headers.headers.frameDeny",
            "false",
        ),
        "Security headers",
        ["headers.frameDeny: true"],
        ["headers.frameDeny: false"],
    ),
    (
        "a dev router without the security headers",
        _set("dev.services.agent.labels.traefik.http.routers.dev-agent.middlewares", None),
        "Security headers",
        ["agent routers use: (absent)"],
        ["agent routers use: security-headers"],
    ),
    (
        "a changed logging option",
        _set("dev.services.agent.logging.options.max-size", "20m"),
        "Logging",
        ["agent: json-file max-file=3 max-size=20m"],
        ["agent: json-file max-file=3 max-size=10m"],
    ),
    (
        "a data directory shared with prod",
        _share_prod_qdrant_data,
        "Data (volumes, bind mounts)",
        ["data/openwebui_dev, data/qdrant,"],
        ["data/qdrant"],
    ),
    (
        "prod's database in dev",
        _set("dev.services.postgres.environment.POSTGRES_DB", "agent_db"),
        "Database name",
        ["agent_db (agent uses agent_db_dev)"],
        ["agent_db"],
    ),
    (
        "the agent pointing at prod's database",
        _set(
            "dev.services.agent.environment.DATABASE_URL",
            f"postgresql://agent:{SECRET}@postgres:5432/agent_db",
        ),
        "Database name",
        ["agent_db_dev (agent uses agent_db)"],
        ["agent_db"],
    ),
    (
        "the prod domain in dev",
        _set(
            "dev.services.agent.labels.traefik.http.routers.dev-agent.rule",
            "Host(`agent.test.invalid`)",
        ),
        "Domain",
        ["agent-dev.test.invalid, agent.test.invalid"],
        ["agent.test.invalid"],
    ),
    (
        "production flags in dev",
        _set("dev.services.agent.environment.AGENT_ENVIRONMENT", "production"),
        "AGENT_ENVIRONMENT",
        ["production"],
        ["production"],
    ),
    (
        "a restart policy in dev",
        _set("dev.services.agent.restart", "always"),
        "Restart policy",
        ["agent: always"],
        ["all unless-stopped"],
    ),
    (
        "no restart policy on a prod service",
        _set("prod.services.qdrant.restart", "no"),
        "Restart policy",
        ["none"],
        ["qdrant: no"],
    ),
    (
        "a reservation in dev",
        _set(
            "dev.services.agent.deploy",
            {"resources": {"reservations": {"cpus": 0.5, "memory": "268435456"}}},
        ),
        "Resource reservations",
        ["agent: cpus=0.5 memory=256.0 MB"],
        ["all services"],
    ),
    (
        "a prod service without reservations",
        _set("prod.services.qdrant.deploy", None),
        "Resource reservations",
        ["none"],
        ["none for qdrant"],
    ),
    (
        "a Traefik of its own in dev",
        _traefik_in_dev,
        "Traefik",
        ["runs in dev"],
        ["runs in the stack"],
    ),
    (
        "a dev router name without prefix",
        _rename_dev_router,
        "Router names",
        ["agent, dev-agent, dev-openwebui"],
        ["prod-agent"],
    ),
    (
        "a short network name for Traefik",
        _set("dev.services.agent.labels.traefik.docker.network", "platform"),
        "Traefik network",
        ["platform"],
        ["_platform"],
    ),
    (
        "both projects under one name",
        _set("dev.name", "stt-shared"),
        "Project name",
        ["stt-shared"],
        ["-prod"],
    ),
]


@pytest.mark.parametrize(
    ("mutate", "row", "dev", "prod"), [pytest.param(*case[1:], id=case[0]) for case in BREAKS]
)
def test_each_break_fails_its_row_only_with_both_values(
    test_platform: Platform,
    rendered: Configs,
    mutate: Callable[[Configs], None],
    row: str,
    dev: list[str],
    prod: list[str],
) -> None:
    configs = copy.deepcopy(rendered)
    mutate(configs)
    report = CheckReport(tuple(structural(test_platform, configs))).redacted([SECRET])
    assert set(failing(list(report.rows))) == {row}
    found = report.row(
        parity.SAME
        if row in ("Services", "Port exposure", "Health checks", "Security headers", "Logging")
        else parity.DIFFERENT,
        row,
    )
    assert found.detail
    for expected in dev:
        assert expected in found.dev, (found.dev, expected)
    for expected in prod:
        assert expected in found.prod, (found.prod, expected)
    assert SECRET not in json.dumps(report.to_dict())


def test_secrets_that_leak_into_a_value_are_redacted(
    test_platform: Platform, rendered: Configs
) -> None:
    configs = copy.deepcopy(rendered)
    configs["prod"]["services"]["agent"]["healthcheck"]["test"] = [
        "CMD-SHELL",
        f"curl -u agent:{SECRET} http://localhost:8000/health",
    ]
    report = CheckReport(tuple(structural(test_platform, configs))).redacted([SECRET])
    row = report.row(parity.SAME, "Health checks")
    assert not row.ok and "curl -u agent:*** http" in row.prod
    assert SECRET not in json.dumps(report.to_dict())


def test_logging_must_be_json_file_even_when_both_agree(
    test_platform: Platform, rendered: Configs
) -> None:
    configs = copy.deepcopy(rendered)
    for env in ("dev", "prod"):
        configs[env]["services"]["agent"]["logging"] = {"driver": "local"}
    row = failing(structural(test_platform, configs))["Logging"]
    assert "not the json-file driver: agent" in row.detail


# --- drift ---------------------------------------------------------------------------------------

HASHES = {"agent": "h-agent", "postgres": "h-pg"}
IMAGES = {"agent": "sha256:aaa", "postgres": "sha256:ppp"}


def deployed(**overrides: tuple[str, str]) -> tuple[Deployed, ...]:
    """Containers in sync with HASHES/IMAGES unless overridden (service=(hash, image))."""
    facts = {name: (HASHES[name], IMAGES[name]) for name in HASHES} | overrides
    return tuple(Deployed(name, h, image) for name, (h, image) in facts.items())


def drift(
    dev: EnvState, prod: EnvState, created: dict[str, str] | None = None
) -> dict[str, CheckRow]:
    return {row.name: row for row in parity.drift_rows(dev, prod, created or {})}


def test_nothing_deployed_is_no_drift() -> None:
    rows = drift(EnvState(HASHES, IMAGES), EnvState(HASHES, IMAGES))
    assert all(row.ok for row in rows.values())
    assert rows["Config"].dev == rows["Config"].prod == "not deployed"


def test_in_sync() -> None:
    state = EnvState(HASHES, IMAGES, deployed())
    rows = drift(state, state)
    assert all(row.ok for row in rows.values())
    assert (rows["Config"].dev, rows["Services"].prod) == ("in sync", "all 2 present")
    assert rows["Images"].dev == "same as prod"


def test_a_changed_config_and_a_moved_image_tag_are_drift() -> None:
    dev = EnvState(
        HASHES,
        IMAGES,
        deployed(
            agent=("old-hash", IMAGES["agent"]), postgres=(HASHES["postgres"], "sha256:older")
        ),
    )
    rows = drift(dev, EnvState(HASHES, IMAGES, deployed()))
    assert not rows["Config"].ok
    assert rows["Config"].dev == ("changed since deploy: agent; newer image available: postgres")
    assert rows["Config"].prod == "in sync"


def test_missing_and_extra_services() -> None:
    containers = (*deployed()[:1], Deployed("ghost", "x", "sha256:g"))
    rows = drift(EnvState(HASHES, IMAGES, containers), EnvState(HASHES, IMAGES))
    assert not rows["Services"].ok
    assert rows["Services"].dev == "missing: postgres; extra: ghost"
    assert rows["Services"].prod == "not deployed"


def test_which_side_is_ahead_on_images() -> None:
    dev = EnvState(HASHES, IMAGES, deployed(agent=(HASHES["agent"], "sha256:new")))
    prod = EnvState(HASHES, IMAGES, deployed())
    created = {
        "sha256:new": "2026-02-01T00:00:00.123456789Z",
        IMAGES["agent"]: "2026-01-01T00:00:00Z",
    }
    row = drift(dev, prod, created)["Images"]
    assert row.ok and row.detail == "dev is ahead of prod on: agent"
    assert (row.dev, row.prod) == ("agent new", "agent aaa")
    row = drift(prod, dev, created)["Images"]
    assert row.detail == "prod is ahead of dev on: agent"


def test_a_state_that_could_not_be_read_fails() -> None:
    rows = drift(EnvState({}, {}, error="compose said no"), EnvState(HASHES, IMAGES))
    assert not rows["Config"].ok and rows["Config"].dev == "compose said no"


# --- hygiene -------------------------------------------------------------------------------------


def volume(name: str, project: str = "", key: str = "", size: int | None = None) -> dict[str, Any]:
    labels = {"com.docker.compose.project": project, "com.docker.compose.volume": key}
    return {
        "Name": name,
        "Labels": {k: v for k, v in labels.items() if v} or None,
        "UsageData": None if size is None else {"Size": size, "RefCount": 0},
    }


def test_orphaned_volumes_are_named_and_sized_and_ours_are_not(test_platform: Platform) -> None:
    dev, prod = test_platform.dev, test_platform.prod
    volumes = [
        volume(dev.postgres_volume, dev.project, "postgres_data_dev", 10),
        volume(prod.postgres_volume, prod.project, "postgres_data", 10),
        volume("compose_postgres_data_dev", "compose", "postgres_data_dev", 3 * 1024 * 1024),
        volume("old-checkout_postgres_data", size=-1),
        volume("unrelated_cache", "other", "cache", 5),
    ]
    orphans = parity.orphan_volumes(volumes, dev, prod)
    assert orphans == [
        Orphan("dev", "compose_postgres_data_dev", "compose", 3 * 1024 * 1024),
        Orphan("prod", "old-checkout_postgres_data", "old-checkout", -1),
    ]
    row = parity.orphans_row(orphans)
    assert not row.ok
    assert row.dev == "compose_postgres_data_dev (3.0 MB, project compose)"
    assert row.prod == "old-checkout_postgres_data (size unknown, project old-checkout)"
    assert row.detail.startswith("PLATFORM DATA OUTSIDE THE PLATFORM'S PROJECTS")
    assert parity.orphans_row([]).ok


@pytest.mark.parametrize(
    ("seen", "ok", "detail"),
    [
        (TraefikAttachment("n", True, "t", True, True), True, "routes dev"),
        (TraefikAttachment("n", True, "t", True, False), False, "docker network connect n t"),
        (TraefikAttachment("n", False, "t", True, False), True, "nothing to attach"),
        (TraefikAttachment("n", True, "", False, False), True, "nothing to attach"),
    ],
)
def test_traefik_attachment(seen: TraefikAttachment, ok: bool, detail: str) -> None:
    row = parity.traefik_attachment_row(seen)
    assert row.ok is ok and detail in row.detail


def test_dotenv_row_masks_secrets_and_flags_placeholders() -> None:
    example = {"POSTGRES_PASSWORD": "change-me", "DOMAIN": "agent.example.com"}
    row = parity.dotenv_row(
        {"POSTGRES_PASSWORD": "change-me", "DOMAIN": "agent.example.com"}, example
    )
    assert not row.ok
    assert row.detail.startswith("still the .env.example value: POSTGRES_PASSWORD.")
    assert "POSTGRES_PASSWORD=***" in row.detail and "DOMAIN=agent.example.com" in row.detail
    assert "change-me" not in row.detail
    assert parity.dotenv_row({"POSTGRES_PASSWORD": "s3cret-value"}, example).ok


def test_forbidden_row() -> None:
    assert parity.forbidden_row([]).ok
    row = parity.forbidden_row(["COMPOSE_PROJECT_NAME is set in /x/.env"])
    assert not row.ok and row.detail == "COMPOSE_PROJECT_NAME is set in /x/.env"


def test_report_is_json_and_fails_on_any_row() -> None:
    report = CheckReport(
        (
            CheckRow(parity.DRIFT, "Config", True),
            CheckRow(parity.HYGIENE, ".env", False, detail="x"),
        )
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False
    assert data["rows"][1] == {
        "section": "hygiene",
        "name": ".env",
        "ok": False,
        "dev": "",
        "prod": "",
        "detail": "x",
    }
    assert [row.name for row in report.failures] == [".env"]


# --- run_checks without an engine ----------------------------------------------------------------


def test_unreachable_engine_is_a_failing_row_not_an_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    report = run_checks(make_platform(tmp_path))
    assert not report.ok
    for section in (parity.DRIFT, parity.HYGIENE):
        row = report.row(section, "Docker engine")
        assert not row.ok and "unreachable" in row.detail and "DOCKER_HOST" in row.detail
    assert all(row.ok for row in report.rows if row.section in (parity.SAME, parity.DIFFERENT))


def test_a_forbidden_variable_fails_hygiene_and_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    platform = make_platform(tmp_path)
    with platform.dotenv.open("a") as env_file:
        env_file.write("COMPOSE_PROJECT_NAME=oops\n")
    report = run_checks(platform)
    row = report.row(parity.HYGIENE, "Forbidden variables")
    assert not row.ok and f"COMPOSE_PROJECT_NAME is set in {platform.dotenv}" in row.detail
    assert SECRET not in json.dumps(report.to_dict())


def test_a_missing_env_file_is_a_failing_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    platform = make_platform(tmp_path)
    platform.dotenv.unlink()
    report = run_checks(platform)
    row = report.row(parity.HYGIENE, ".env")
    assert not row.ok and "No .env file" in row.detail and "Copy .env.example" in row.detail
    assert not report.row(parity.SAME, "Compose config").ok
