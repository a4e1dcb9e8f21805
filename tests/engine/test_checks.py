"""`run_checks` against the real engine and real Compose, in a copy of compose/.

Each parity row is broken for real in the copied files; drift is made by
editing a file after a deploy; an orphan is a volume made the way
`docker compose up` without -p makes one.
"""

from __future__ import annotations

import io
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from stack_tui.core import compose, engine
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.parity import DIFFERENT, DRIFT, HYGIENE, SAME, CheckReport
from stack_tui.ops.check import run_checks
from support import REPO, destroy, make_platform

pytestmark = pytest.mark.engine

# Other tests' platforms on the same engine are, from this platform's view,
# platform data under foreign project names: the orphan row may fail for them.
ORPHANS = "Orphaned data"


def copy_platform(base: Path) -> Platform:
    compose_dir = base / "compose"
    shutil.copytree(REPO / "compose", compose_dir)
    return make_platform(base, compose_dir=compose_dir)


@pytest.fixture
def copied(tmp_path: Path, engine_client: docker.DockerClient) -> Iterator[Platform]:
    """A platform on a private copy of compose/, destroyed afterwards."""
    platform = copy_platform(tmp_path)
    try:
        yield platform
    finally:
        destroy(platform)


@pytest.fixture
def undeployed(tmp_path: Path, engine_client: docker.DockerClient) -> Iterator[Platform]:
    """A platform on a private copy of compose/ that is never deployed: checking it must
    create nothing, which is asserted instead of cleaning up."""
    platform = copy_platform(tmp_path)
    yield platform
    for project in (platform.dev_project, platform.prod_project):
        label = {"label": f"{engine.PROJECT_LABEL}={project}"}
        assert engine_client.containers.list(all=True, filters=label) == []
        assert engine_client.volumes.list(filters=label) == []
        assert engine_client.networks.list(filters=label) == []


def up(*envs: Environment) -> None:
    """`up -d --wait` the environments side by side."""
    with ThreadPoolExecutor() as pool:
        for done in [
            pool.submit(compose.run, env, "up", "-d", "--wait", "--remove-orphans") for env in envs
        ]:
            done.result()


def edit(
    platform: Platform, overlay: str, service: str, old: str, new: str, count: int = 1
) -> None:
    """Replace `old` (which must occur exactly `count` times) inside one service's block of a
    compose file; `old` == "" inserts `new` right after the service's key line."""
    path = platform.compose / f"docker-compose.{overlay}.yml"
    text = path.read_text()
    start = text.index(f"\n  {service}:\n") + len(f"\n  {service}:\n")
    following = re.search(r"\n(?=  \S|\S)", text[start:])
    end = start + following.start() if following else len(text)
    block = text[start:end]
    if old:
        assert block.count(old) == count, (service, old, block)
        block = block.replace(old, new)
    else:
        block = new + block
    path.write_text(text[:start] + block + text[end:])


def add_service(platform: Platform, overlay: str, yaml: str) -> None:
    path = platform.compose / f"docker-compose.{overlay}.yml"
    text = path.read_text()
    assert text.count("\nservices:\n") == 1
    path.write_text(text.replace("\nservices:\n", f"\nservices:\n{yaml}", 1))


def failing_besides_orphans(report: CheckReport) -> set[str]:
    return {row.name for row in report.failures if row.name != ORPHANS}


Break = Callable[[Platform], None]

BREAKS: list[tuple[str, Break, str, str, str, str]] = [
    (
        "a host port on a dev service",
        lambda p: edit(p, "dev", "openwebui", "", '    ports: ["127.0.0.1:18080:8080"]\n'),
        SAME,
        "Port exposure",
        "openwebui 18080->8080/tcp",
        "traefik",
    ),
    (
        "a differing healthcheck",
        lambda p: edit(p, "prod", "agent", "", "    healthcheck:\n      interval: 30s\n"),
        SAME,
        "Health checks",
        "agent: curl --silent --fail",
        "interval=30s",
    ),
    (
        "a differing security header",
        lambda p: edit(
            p, "prod", "openwebui", 'headers.frameDeny: "true"', 'headers.frameDeny: "false"'
        ),
        SAME,
        "Security headers",
        "headers.frameDeny: true",
        "headers.frameDeny: false",
    ),
    (
        "a changed logging option",
        lambda p: edit(
            p, "dev", "agent", "", '    logging:\n      options:\n        max-size: "20m"\n'
        ),
        SAME,
        "Logging",
        "agent: json-file max-file=3 max-size=20m",
        "agent: json-file max-file=3 max-size=10m",
    ),
    (
        "a service only in prod",
        lambda p: add_service(
            p,
            "prod",
            (
                "  worker:\n    image: ${AGENT_IMAGE}\n    restart: unless-stopped\n"
                "    deploy: {resources: {reservations: {memory: 64M}}}\n"
                "    logging: {driver: json-file, options: {max-size: 10m, max-file: '3'}}\n"
            ),
        ),
        SAME,
        "Services",
        "agent, openwebui, postgres, qdrant",
        "worker",
    ),
    (
        "prod's database in dev",
        lambda p: edit(p, "dev", "postgres", "POSTGRES_DB: agent_db_dev", "POSTGRES_DB: agent_db"),
        DIFFERENT,
        "Database name",
        "agent_db (agent uses agent_db_dev)",
        "agent_db",
    ),
    (
        "the prod domain in dev",
        lambda p: edit(p, "dev", "agent", "Host(`${DOMAIN_DEV}`)", "Host(`${DOMAIN}`)"),
        DIFFERENT,
        "Domain",
        "agent-dev.test.invalid, agent.test.invalid",
        "agent.test.invalid",
    ),
    (
        "production flags in dev",
        lambda p: edit(
            p, "dev", "agent", "AGENT_ENVIRONMENT: development", "AGENT_ENVIRONMENT: production"
        ),
        DIFFERENT,
        "AGENT_ENVIRONMENT",
        "production",
        "production",
    ),
    (
        "a restart policy in dev",
        lambda p: edit(p, "dev", "agent", 'restart: "no"', "restart: always"),
        DIFFERENT,
        "Restart policy",
        "agent: always",
        "all unless-stopped",
    ),
    (
        "a reservation in dev",
        lambda p: edit(
            p,
            "dev",
            "agent",
            "",
            "    deploy:\n      resources:\n        reservations:\n          memory: 64M\n",
        ),
        DIFFERENT,
        "Resource reservations",
        "agent: memory=64.0 MB",
        "all services",
    ),
    (
        "a Traefik of its own in dev",
        lambda p: add_service(
            p,
            "dev",
            (
                "  traefik:\n    image: ${TRAEFIK_IMAGE}\n"
                "    logging: {driver: json-file, options: {max-size: 10m, max-file: '3'}}\n"
            ),
        ),
        DIFFERENT,
        "Traefik",
        "runs in dev",
        "runs in the stack",
    ),
    (
        "a dev router name without prefix",
        lambda p: edit(p, "dev", "agent", "routers.dev-agent.", "routers.agent.", count=4),
        DIFFERENT,
        "Router names",
        "agent, dev-agent, dev-openwebui",
        "prod-agent",
    ),
    (
        "a short network name for Traefik",
        lambda p: edit(
            p,
            "dev",
            "agent",
            "    labels:\n",
            "    labels:\n      traefik.docker.network: platform\n",
        ),
        DIFFERENT,
        "Traefik network",
        "platform",
        "-prod_platform",
    ),
    (
        "a data directory shared with prod",
        lambda p: edit(p, "dev", "qdrant", "/qdrant_dev:", "/qdrant:"),
        DIFFERENT,
        "Data (volumes, bind mounts)",
        "data/qdrant,",
        "data/qdrant,",
    ),
]


def test_the_shipped_files_pass(undeployed: Platform, engine_client: docker.DockerClient) -> None:
    report = run_checks(undeployed, engine_client)
    assert failing_besides_orphans(report) == set()
    assert report.row(DRIFT, "Config").dev == "not deployed"


@pytest.mark.parametrize(
    ("breaks", "section", "row", "dev", "prod"),
    [pytest.param(*case[1:], id=case[0]) for case in BREAKS],
)
def test_each_break_fails_its_row_and_only_it(
    undeployed: Platform,
    engine_client: docker.DockerClient,
    breaks: Break,
    section: str,
    row: str,
    dev: str,
    prod: str,
) -> None:
    breaks(undeployed)
    report = run_checks(undeployed, engine_client)
    assert failing_besides_orphans(report) == {row}, report.failures
    found = report.row(section, row)
    assert dev in found.dev and prod in found.prod and found.detail, found


def test_drift_after_a_file_changes_and_clears_after_redeploy(
    copied: Platform, engine_client: docker.DockerClient
) -> None:
    dev, prod = copied.dev, copied.prod
    newer = f"stt-{uuid.uuid4().hex[:8]}/agent:next"
    engine_client.images.build(
        fileobj=io.BytesIO(f"FROM stack-tui-test/agent:1\nLABEL stt.check={newer}\n".encode()),
        tag=newer,
        rm=True,
    )
    try:
        edit(copied, "dev", "agent", "", f"    image: {newer}\n")
        up(dev, prod)

        report = run_checks(copied, engine_client)
        config, services = report.row(DRIFT, "Config"), report.row(DRIFT, "Services")
        assert (config.ok, config.dev, config.prod) == (True, "in sync", "in sync")
        assert (services.dev, services.prod) == ("all 4 present", "all 5 present")
        images = report.row(DRIFT, "Images")
        assert images.detail == "dev is ahead of prod on: agent"
        attached = report.row(HYGIENE, "Traefik on dev network")
        assert not attached.ok and f"not on {dev.network}" in attached.detail

        edit(
            copied,
            "dev",
            "agent",
            "    environment:\n",
            '    environment:\n      FEATURE_FLAG: "on"\n',
        )
        prod_qdrant = engine.service_container(engine_client, prod.project, "qdrant")
        assert prod_qdrant is not None
        prod_qdrant.remove(force=True)
        # A service since removed from the files: what Compose left of it.
        ghost = engine_client.containers.create(
            "stack-tui-test/agent:1",
            labels={
                engine.PROJECT_LABEL: dev.project,
                engine.SERVICE_LABEL: "ghost",
                engine.CONFIG_HASH_LABEL: "0" * 64,
                "com.docker.compose.oneoff": "False",
            },
        )
        traefik = engine.service_container(engine_client, prod.project, "traefik")
        engine_client.networks.get(dev.network).connect(traefik)

        report = run_checks(copied, engine_client)
        config, services = report.row(DRIFT, "Config"), report.row(DRIFT, "Services")
        assert not config.ok
        assert (config.dev, config.prod) == ("changed since deploy: agent", "in sync")
        assert not services.ok
        assert (services.dev, services.prod) == ("extra: ghost", "missing: qdrant")
        assert report.row(HYGIENE, "Traefik on dev network").ok

        up(dev, prod)
        report = run_checks(copied, engine_client)
        assert failing_besides_orphans(report) == set(), report.failures
        assert report.row(DRIFT, "Config").dev == "in sync"
        assert report.row(DRIFT, "Services").dev == "all 4 present"
        with pytest.raises(docker.errors.NotFound):
            engine_client.containers.get(ghost.id)
    finally:
        destroy(copied)  # the containers first: they hold the image
        engine_client.images.remove(newer, force=True)


def test_orphaned_data_is_named_loudly_with_its_size(
    undeployed: Platform, engine_client: docker.DockerClient
) -> None:
    copied = undeployed
    stray_project = f"stt-{uuid.uuid4().hex[:8]}-noflag"
    name = f"{stray_project}_postgres_data"
    engine_client.volumes.create(
        name, labels={engine.PROJECT_LABEL: stray_project, engine.VOLUME_LABEL: "postgres_data"}
    )
    stray_dir = copied.compose / "data" / "qdrant_dev"
    stray_dir.mkdir(parents=True)
    (stray_dir / "segment").write_bytes(b"x" * 2048)
    try:
        engine_client.containers.run(
            "stack-tui-test/agent:1",
            entrypoint=["sh", "-c"],
            command=["head -c 307200 /dev/zero > /data/pgdata"],
            volumes={name: {"bind": "/data", "mode": "rw"}},
            remove=True,
        )
        row = run_checks(copied, engine_client).row(HYGIENE, ORPHANS)
        assert not row.ok
        assert f"{name} (300.0 KB, project {stray_project})" in row.prod
        assert f"{stray_dir} (2.0 KB)" in row.dev
        assert row.detail.startswith("PLATFORM DATA OUTSIDE THE PLATFORM'S PROJECTS")
        assert copied.dev.project not in row.detail and copied.prod.project not in row.detail
    finally:
        engine_client.volumes.get(name).remove(force=True)
