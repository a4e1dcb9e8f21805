"""Deterministic data for snapshot tests and scripts/screenshots: fixed statuses, a frozen
clock, scripted operations. No engine, no watcher (FixedBackend.live is False)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from textual.worker import get_current_worker

from stack_tui.core import console, engine, stats
from stack_tui.core.backups import BackupInfo
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import Refused
from stack_tui.core.locks import Holder
from stack_tui.core.logs import LineSource, LogLine
from stack_tui.core.parity import DIFFERENT, DRIFT, HYGIENE, SAME, CheckReport, CheckRow
from stack_tui.core.records import Record, ServiceChange, ServiceState
from stack_tui.ops.events import (
    Caution,
    ConfirmationNeeded,
    Event,
    Outcome,
    OutputLine,
    Result,
    ServiceProgress,
    StepFinished,
    StepStarted,
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
        engine_unreachable=True,
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
            f"1. The backup is loaded into a new database while {env.name} keeps serving.",
            f"2. Then a short switch-over: agent, openwebui stopped, the sessions still on "
            f"{env.db_name} ended, the databases swapped, the services started again.",
            f"{env.db_name} becomes exactly the backup: tables created since are not in it. "
            f"Its current state, with every committed write, is kept as a database "
            f"(./stack backup undo-restore{' --dev' if env.name == 'dev' else ''} swaps it "
            "back).",
        ],
        require_typing=env.name,
    )
    yield question
    if question.response is not True:
        yield Result(
            env.name,
            operation="restore",
            outcome=Outcome.CANCELLED,
            summary="Restore cancelled: nothing was changed.",
        )
        return
    yield Caution(env.name, "scripted restore: nothing is really restored")
    yield Result(
        env.name, operation="restore", outcome=Outcome.OK, summary=f"Restored {file.name}."
    )


def _state(service: str, ref: str, n: int) -> ServiceState:
    return ServiceState(
        f"{service}-container-{n}",
        f"{service}-config-{n}",
        ref,
        f"sha256:{n:02d}{service[:2].encode().hex()}" + "0" * 56,
    )


def history(env: Environment) -> list[Record]:
    """Three deploys: the first, an agent upgrade, and one the health gate rolled back."""
    others = {name: _state(name, ref, 1) for name, ref in IMAGES.items() if name != "agent"}
    if not env.runs_traefik:
        others.pop("traefik")
    agent = {n: _state("agent", f"ghcr.io/example/ai-agent:1.4.{n}", n) for n in (1, 2, 3)}

    def record(n: int, minutes_ago: int, changes: dict[str, ServiceChange], **kw: object) -> Record:
        base = Record(
            id=f"{env.name}_202602{20 + n:02d}_1{n}0000",
            env=env.name,
            project=env.project,
            operation="deploy",
            started=NOW - minutes_ago * 60,
            user="alice",
            ssh_client="203.0.113.7",
            host="ops1",
            compose_hash="9f2c41d0aa7b" + "0" * 52,
            compose_files={},
            git_commit="4be1f0c2d9a3" + "0" * 28,
            services=changes,
            result="ok",
            backup=f"{env.name}_202602{20 + n:02d}_1{n}0000.sql.gz" if n > 1 else "",
        )
        return replace(base, **kw)  # type: ignore[arg-type]

    unchanged = {name: ServiceChange(state, state, "unchanged") for name, state in others.items()}
    first = record(
        1,
        4000,
        {
            **{
                name: ServiceChange(None, state, "healthy (updated)")
                for name, state in others.items()
            },
            "agent": ServiceChange(None, agent[1], "healthy (updated)"),
        },
    )
    upgrade = record(
        2, 1500, {**unchanged, "agent": ServiceChange(agent[1], agent[2], "healthy (updated)")}
    )
    failed = record(
        3,
        25,
        {
            **unchanged,
            "agent": ServiceChange(
                agent[2],
                replace(agent[2], container_id="agent-container-4", pinned=True),
                "failed: healthcheck failing: exit 1, 'HTTP 503'; "
                "rolled back to its previous image",
            ),
        },
        result="rolled back",
        rolled_back=True,
        summary=f"{env.name} deploy failed: agent healthcheck failing: exit 1, 'HTTP 503'. "
        "Rolled back: agent (previous images and config).",
    )
    return [failed, upgrade, first]


def rollback_confirmation(env: Environment, to: str) -> Iterator[Event]:
    """The rollback operation's own question."""
    question = ConfirmationNeeded(
        env.name,
        f"Roll {env.name} back to how it was before {to}?",
        details=["agent: ghcr.io/example/ai-agent:1.4.2 -> ghcr.io/example/ai-agent:1.4.1"],
        require_typing=env.name if env.is_prod else "",
    )
    yield question
    if question.response is not True:
        yield Result(
            env.name,
            operation="rollback",
            outcome=Outcome.CANCELLED,
            summary="Rollback cancelled: nothing changed.",
        )
        return
    yield Result(
        env.name,
        operation="rollback",
        outcome=Outcome.OK,
        summary=f"{env.name} rolled back to before {to}.",
    )


def _hold(release: threading.Event) -> Iterator[Event]:
    """Stay "running" until released or until the app quits (the worker is cancelled)."""
    worker = get_current_worker()
    while not release.wait(0.02):
        if worker.is_cancelled:
            return
    yield Result("prod", operation="deploy", outcome=Outcome.OK, summary="deployed")


class FixedLines:
    """Fixed lines; `following`: then no more until closed (a running service's follow)."""

    def __init__(self, lines: list[LogLine], following: bool = False) -> None:
        self.lines = lines
        self.following = following
        self.closed = threading.Event()

    def batches(self) -> Iterator[list[LogLine]]:
        if self.lines:
            yield self.lines
        if self.following:
            self.closed.wait()

    def __iter__(self) -> Iterator[LogLine]:
        return iter(self.lines)

    def close(self) -> None:
        self.closed.set()


#: What a service's fixed log says: levels, a secret-free URL, a multi-word message.
SERVICE_LOG = (
    "INFO starting worker 1",
    'level=warn msg="slow query" took=2.1s',
    "ERROR: connection refused to qdrant:6333",
    "GET /api/items 200",
    "INFO worker 1 ready",
    'level=error msg="request failed" path=/api/items',
)


class FixedSource:
    """A service's log with fixed lines, one second apart, all of them history."""

    def __init__(self, service: str, offset: int = 0) -> None:
        self.service = service
        self.lines = [
            LogLine(service, f"2026-02-23T17:10:{n * 4 + offset:02d}.000000000Z", text)
            for n, text in enumerate(SERVICE_LOG)
        ]

    def history(self, until: str) -> FixedLines:
        return FixedLines(self.lines)

    def follow(self, since: str) -> FixedLines:
        return FixedLines([], following=True)

    def tail(self, lines: int, until: str) -> FixedLines:
        return FixedLines(self.lines[-lines:])


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
        self.samplers: list[FixedSampler] = []
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

    def undo_restore(self, env: Environment) -> Iterator[Event]:
        self.started.append(f"undo-restore {env.name}")
        return iter(
            [
                Result(
                    env.name,
                    operation="undo-restore",
                    outcome=Outcome.OK,
                    summary=f"{env.db_name} is back as it was before the restore.",
                )
            ]
        )

    def history(self, env: Environment) -> list[Record]:
        return history(env)

    def rollback(self, env: Environment, *, to: str, with_data: bool) -> Iterator[Event]:
        self.started.append(f"rollback {env.name} {to}" + (" with data" if with_data else ""))
        return rollback_confirmation(env, to)

    def offsite_copies(self) -> list[BackupInfo] | None:
        return None  # off-host copies off

    def restore_copy(
        self, env: Environment, name: str, *, allow_cross_env: bool
    ) -> Iterator[Event]:
        self.started.append(f"restore-copy {env.name} {name}")
        return restore_confirmation(self.platform, env, self.platform.backups_dir / name)

    def checks(self) -> CheckReport:
        return self.report

    def log_sources(self, env: Environment, services: list[str]) -> list[LineSource]:
        return [FixedSource(service, offset) for offset, service in enumerate(services)]

    def resource_use(
        self,
        env: Environment,
        on_sample: Callable[[str, stats.Sample], None],
        on_problem: Callable[[str], None],
    ) -> FixedSampler:
        sampler = FixedSampler(self.statuses[env.name], on_sample)
        self.samplers.append(sampler)
        return sampler

    def shell(self, env: Environment, service: str) -> console.Session:
        raise Refused(f"{service} in {env.name} is not running (it is exited).", "Deploy it.")

    def psql(self, env: Environment, *, read_only: bool) -> console.Session:
        raise Refused("postgres is not running.", "Deploy it.")

    def attach(self, session: console.Session) -> int:
        raise AssertionError("a fixed backend hands no terminal over")


class FixedSampler:
    """A minute of made-up samples per running service (a slow wave, each service its own
    level), delivered at once on the first sync."""

    def __init__(self, status: EnvStatus, on_sample: Callable[[str, stats.Sample], None]) -> None:
        self.histories: dict[str, stats.History] = {}
        self.stopped = False
        self._on_sample = on_sample
        for rank, row in enumerate(status.services):
            if row.state != "running":
                continue
            history = self.histories[row.service] = stats.History()
            for second in range(stats.HISTORY):
                wave = (second * 7 + rank * 11) % 20
                history.add(
                    stats.Sample(
                        NOW - stats.HISTORY + second,
                        cpu=0.5 * (rank + 1) + wave / 10,
                        memory=(40 + 30 * rank + wave) * 2**20,
                        memory_limit=2 * 2**30,
                    )
                )

    @property
    def open_streams(self) -> int:
        return 0 if self.stopped else len(self.histories)

    def sync(self) -> None:
        for service, history in self.histories.items():
            assert history.last is not None
            self._on_sample(service, history.last)

    def stop(self) -> None:
        self.stopped = True


@dataclass(frozen=True)
class DiedDeploy:
    """Shaped as status reports an operation whose process was killed (EnvStatus.died)."""

    operation: str = "deploy"
    pid: int = 17275
    started: float = NOW - 3600
    last_step: str = "up"
    log: str = ""


def died(platform: Platform, name: str) -> EnvStatus:
    """A healthy environment whose last deploy was killed half-way (SIGKILL)."""
    status = healthy(platform, name)
    object.__setattr__(status, "died", DiedDeploy())  # the field EnvStatus.died (ops.died)
    return status


def many_backups(platform: Platform, name: str) -> EnvStatus:
    """Four weeks of nightly backups: more than any pane has rows for."""
    return replace(healthy(platform, name), backups=backup_list(platform.env(name), 28))


def drilled_and_stale(platform: Platform, name: str) -> EnvStatus:
    """Newest backup failed its drill, the one before passed; no good backup for 30 h."""
    from stack_tui.core import drills, staleness

    status = healthy(platform, name)
    found = [replace(b, taken=b.taken - timedelta(hours=20)) for b in status.backups]
    found[0] = replace(
        found[0],
        drill=drills.DrillRecord(
            ok=False, reason="public.notes: dump 500 rows, loaded 499", at=NOW - 600, seconds=38.4
        ),
    )
    found[1] = replace(
        found[1], drill=drills.DrillRecord(ok=True, reason="", at=NOW - 2 * 3600, seconds=41.2)
    )
    stale = (staleness.Stale(name, "backup", 30 * 3600.0, 26 * 3600.0),)
    return replace(status, backups=tuple(found), stale=stale)
