"""Deterministic data for snapshot tests and scripts/screenshots: fixed statuses, a frozen
clock, scripted operations. No engine, no watcher (FixedBackend.live is False)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from textual.worker import get_current_worker

from stack_tui.core import engine
from stack_tui.core.backups import BackupInfo
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.locks import Holder
from stack_tui.core.parity import DIFFERENT, DRIFT, HYGIENE, SAME, CheckReport, CheckRow
from stack_tui.ops.events import (
    ConfirmationNeeded,
    Event,
    OutputLine,
    Result,
    ServiceProgress,
    StepFinished,
    StepStarted,
    Warning,
)
from stack_tui.ops.status import EnvStatus, ServiceStatus, VolumeStatus

REPO = Path(__file__).resolve().parents[2]
#: The frozen "now": 2026-02-23 17:30:00 in the tests' time zone (UTC, see conftest).
NOW_DT = datetime(2026, 2, 23, 17, 30, 0)
NOW = NOW_DT.timestamp()
UNREACHABLE = (
    "The Docker engine at unix:///var/run/docker.sock is unreachable (ConnectionError).",
    engine.UNREACHABLE_HINT,
)
IMAGES = {
    "agent": "ghcr.io/example/ai-agent:1.4.2",
    "openwebui": "ghcr.io/open-webui/open-webui:v0.5.20",
    "postgres": "postgres:16",
    "qdrant": "qdrant/qdrant:v1.12.4",
    "traefik": "traefik:v3.2",
}


#: Shown on screen only: FixedBackend never touches the data directory.
DATA = Path("/srv/ai-agent-platform/data")


def make_platform() -> Platform:
    """The real project names and a fixed data path: what an operator would see."""
    return Platform(
        root=REPO, data_dir=DATA, env_file=DATA.parent / ".env", compose_dir=REPO / "compose"
    )


def services(env: Environment, up_for: timedelta) -> tuple[ServiceStatus, ...]:
    names = ["agent", "openwebui", "postgres", "qdrant"] + (["traefik"] if env.is_prod else [])
    started = (NOW_DT - up_for).timestamp()
    return tuple(ServiceStatus(name, "running", "healthy", IMAGES[name], started) for name in names)


def backup_list(env: Environment, days: int) -> tuple[BackupInfo, ...]:
    found = []
    for day in range(days):
        taken = NOW_DT.replace(hour=3, minute=0) - timedelta(days=day)
        name = f"{env.name}_{taken:%Y%m%d_%H%M%S}.sql.gz"
        size = (48_200_000 if env.is_prod else 6_100_000) + day * 91_000
        found.append(BackupInfo(env.backups_dir / name, env.name, taken, size, verified=True))
    return tuple(found)


def healthy(platform: Platform, name: str) -> EnvStatus:
    env = platform.env(name)
    domain = "agent.example.com" if env.is_prod else "agent-dev.example.com"
    up_for = timedelta(days=3, hours=2) if env.is_prod else timedelta(hours=5, minutes=12)
    return EnvStatus(
        env=env.name,
        project=env.project,
        domain=domain,
        services=services(env, up_for),
        volumes=tuple(VolumeStatus(v, True, env.project) for v in env.expected_volumes),
        backups=backup_list(env, 5 if env.is_prod else 3),
        taken=NOW,
    )


def missing_volume(platform: Platform, name: str) -> EnvStatus:
    """What prod looks like after someone ran `docker compose up` without -p, then down -v."""
    status = healthy(platform, name)
    env = platform.env(name)
    rows = tuple(
        replace(row, state="missing", health="", image="", started=None)
        if row.service in ("postgres", "agent")
        else row
        for row in status.services
    )
    return replace(
        status,
        services=rows,
        volumes=tuple(VolumeStatus(v, False, "") for v in env.expected_volumes),
    )


def unreachable(platform: Platform, name: str) -> EnvStatus:
    env = platform.env(name)
    domain = "agent.example.com" if env.is_prod else "agent-dev.example.com"
    return EnvStatus(
        env=env.name,
        project=env.project,
        domain=domain,
        backups=backup_list(env, 2),
        error=UNREACHABLE[0],
        hint=UNREACHABLE[1],
        taken=NOW,
    )


def other_holder(operation: str = "deploy") -> Holder:
    return Holder(
        user="alice",
        ssh_client="10.20.0.7",
        pid=48213,
        operation=operation,
        env="prod",
        started=NOW - 125,
        log="",
    )


PASSING = CheckReport(
    (
        CheckRow(
            SAME,
            "Services",
            True,
            "agent, openwebui, postgres, qdrant",
            "agent, openwebui, postgres, qdrant",
            "Traefik aside (prod only, by design)",
        ),
        CheckRow(
            SAME,
            "Port exposure",
            True,
            "none",
            "traefik 80->80/tcp, traefik 443->443/tcp",
            "no host ports but the prod Traefik's 80/443",
        ),
        CheckRow(DIFFERENT, "Database name", True, "agent_db_dev", "agent_db"),
        CheckRow(DRIFT, "Images", True, "as configured", "as configured"),
        CheckRow(
            HYGIENE,
            "Forbidden variables",
            True,
            "",
            "",
            "neither COMPOSE_PROJECT_NAME nor STACK_PROJECT_NAME is set",
        ),
    )
)
FAILING = CheckReport(
    (
        *PASSING.rows,
        CheckRow(
            DRIFT,
            "Config",
            False,
            "in sync",
            "changed since the deploy",
            "prod runs an older configuration: deploy prod to apply it",
        ),
    )
)


#: How many events deploy_progress yields before it holds.
DEPLOY_EVENTS = 16


def deploy_progress(env: Environment, release: threading.Event) -> Iterator[Event]:
    """A deploy caught half-way: backup done, two services healthy, two starting."""
    name = env.name
    yield StepStarted(name, "config", "validating .env and the compose files")
    yield StepFinished(name, "config", detail="agent, openwebui, postgres, qdrant, traefik")
    yield StepStarted(name, "volumes", "checking the expected volumes exist")
    yield StepFinished(name, "volumes", detail="all present")
    yield StepStarted(name, "backup", f"pre-deploy backup of {env.db_name}")
    yield OutputLine(
        name, f"pg_dump {env.db_name} | gzip > prod_20260223_172958.sql.gz", source="backup"
    )
    yield OutputLine(
        name, "46.1 MB written, verified (gzip intact, dump complete)", source="backup"
    )
    yield StepFinished(name, "backup", detail="prod_20260223_172958.sql.gz (46.1 MB)")
    yield StepStarted(name, "up", f"docker compose up -d --wait ({env.project})")
    for service, state in (
        ("postgres", "Healthy"),
        ("qdrant", "Healthy"),
        ("agent", "Recreated"),
        ("agent", "Starting"),
        ("openwebui", "Waiting"),
        ("traefik", "Running"),
    ):
        yield ServiceProgress(name, service, state)
    yield OutputLine(name, "Network ai-agent-platform-prod_platform: Running", source="compose")
    yield from _hold(release)


def restore_confirmation(platform: Platform, env: Environment, file: Path) -> Iterator[Event]:
    """The restore operation's own question, worded as ops.restore words it."""
    yield StepStarted(env.name, "validate", detail=str(file))
    yield StepFinished(env.name, "validate", detail="gzip intact, dump complete, 212.4 MB of SQL")
    question = ConfirmationNeeded(
        env.name,
        f"Restore {file.name} into {env.name}'s database {env.db_name}?",
        details=[
            f"File: {file} (46.0 MB, a backup of {env.name}).",
            f"Into: database {env.db_name} of project {env.project} ({env.name}).",
            f"First a safety backup of {env.db_name} is written to {platform.backups_dir}.",
            "Then everything in the backup replaces what the database holds now, in one "
            "transaction: if anything fails, nothing changes.",
            "Tables created after the backup was taken, and not in it, are left as they are.",
        ],
        require_typing=env.name,
    )
    yield question
    if question.response is not True:
        yield Result(
            env.name,
            operation="restore",
            ok=False,
            summary="Restore cancelled: nothing was changed.",
        )
        return
    yield Warning(env.name, "scripted restore: nothing is really restored")
    yield Result(env.name, operation="restore", ok=True, summary=f"Restored {file.name}.")


def _hold(release: threading.Event) -> Iterator[Event]:
    """Stay "running" until released or until the app quits (the worker is cancelled)."""
    worker = get_current_worker()
    while not release.wait(0.02):
        if worker.is_cancelled:
            return
    yield Result("prod", operation="deploy", ok=True, summary="deployed")


class FixedLogs:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def __iter__(self) -> Iterator[str]:
        return iter(self.lines)

    def close(self) -> None:
        pass


class FixedBackend:
    """The Backend seam with fixed answers; operations are scripted generators."""

    live = False

    def __init__(
        self, platform: Platform, statuses: dict[str, EnvStatus], report: CheckReport = PASSING
    ) -> None:
        self.platform = platform
        self.statuses = statuses
        self.report = report
        self.holders: dict[str, Holder] = {}
        self.release = threading.Event()
        self.started: list[str] = []
        self.deploy_script: Callable[[Environment], Iterator[Event]] = lambda env: deploy_progress(
            env, self.release
        )

    def now(self) -> float:
        return NOW

    def status(self, env: Environment, *, reload: bool = False) -> EnvStatus:
        return self.statuses[env.name]

    def prefetched(self, env: Environment) -> EnvStatus | None:
        return None  # the first read goes through a worker, as a refresh does

    def holder(self, env: Environment) -> Holder | None:
        return self.holders.get(env.name)

    def verify_backups(self, env: Environment) -> bool:
        return False

    def deploy(self, env: Environment) -> Iterator[Event]:
        self.started.append(f"deploy {env.name}")
        return self.deploy_script(env)

    def backup(self, env: Environment, *, keep: int) -> Iterator[Event]:
        self.started.append(f"backup {env.name}")
        return deploy_progress(env, self.release)

    def restore(self, env: Environment, file: Path, *, allow_cross_env: bool) -> Iterator[Event]:
        self.started.append(f"restore {env.name} {file.name}")
        return restore_confirmation(self.platform, env, file)

    def offsite_copies(self) -> list[BackupInfo] | None:
        return None  # off-host copies off

    def restore_copy(
        self, env: Environment, name: str, *, allow_cross_env: bool
    ) -> Iterator[Event]:
        self.started.append(f"restore-copy {env.name} {name}")
        return restore_confirmation(self.platform, env, self.platform.backups_dir / name)

    def checks(self) -> CheckReport:
        return self.report

    def logs(self, env: Environment, service: str) -> FixedLogs:
        return FixedLogs([f"{service} line {n}" for n in range(3)])
