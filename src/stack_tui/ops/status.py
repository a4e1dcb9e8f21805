"""A snapshot of one environment: services, volumes, backups, lock holder, a died operation.

Lock-free, so it can run at any time (the TUI calls it on every Docker event
for the environment). Built from the engine and the config Compose renders,
never by parsing `docker ps` text. Its one write: the first status to find an
operation killed outright records it as `died` (ops/died.py), once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stack_tui.core import backups, compose, endpoints, engine, locks, staleness
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import EngineUnreachable, StackError
from stack_tui.core.prepared import Prepared, prepare
from stack_tui.ops.died import Died, reap

if TYPE_CHECKING:
    import docker

    from stack_tui.core import switchover
    from stack_tui.ops.offsite import PaneState


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    state: str  # running, exited, restarting, created, missing, ...
    health: str  # healthy, unhealthy, starting, "" when the service has no healthcheck
    image: str
    started: float | None  # epoch seconds; None when not running

    @property
    def ok(self) -> bool:
        return self.state == "running" and self.health in ("healthy", "")

    def uptime(self, now: float | None = None) -> str:
        if self.started is None or self.state != "running":
            return ""
        return human_duration((now or time.time()) - self.started)


@dataclass(frozen=True)
class VolumeStatus:
    name: str
    present: bool
    project_label: str  # the compose project label on the volume, "" if none / missing

    @property
    def foreign(self) -> bool:
        """Present but labelled as another project's: Compose would reuse it silently."""
        return (
            self.present
            and bool(self.project_label)
            and not self.name.startswith(self.project_label + "_")
        )


@dataclass(frozen=True)
class EnvStatus:
    env: str
    project: str
    domain: str
    services: tuple[ServiceStatus, ...] = ()
    volumes: tuple[VolumeStatus, ...] = ()
    backups: tuple[backups.BackupInfo, ...] = ()
    holder: locks.Holder | None = None
    #: The last operation on this environment, when it died without a Result (ops.died).
    died: Died | None = None
    stale: tuple[staleness.Stale, ...] = ()  # backup limits exceeded (core/staleness.py)
    error: str = ""  # engine unreachable, bad compose file, ...
    hint: str = ""
    #: The error is that the engine does not answer (the CLI's exit code 4, the TUI's badge).
    engine_unreachable: bool = False
    #: The off-host copies' last state, for the TUI (None: off, or not read).
    offsite: PaneState | None = None
    taken: float = field(default_factory=time.time)
    #: The engine's host ("local" for this machine's) and, when remote, a ping's round trip.
    engine_host: str = "local"
    round_trip: float | None = None

    @property
    def missing_volumes(self) -> list[str]:
        return [v.name for v in self.volumes if not v.present]


def human_duration(seconds: float) -> str:
    """Coarse on purpose ("<1m", "12m", "3h05m", "2d4h"): a screen that shows it redraws
    only when the text changes (see next_change), at most once a minute."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return "<1m"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def next_change(seconds: float) -> float:
    """Seconds until human_duration(seconds) shows another text."""
    seconds = max(0.0, seconds)
    step = 3600 if seconds >= 86400 else 60
    return step - seconds % step


def stale_backups(
    env: Environment, values: Mapping[str, str], found: tuple[backups.BackupInfo, ...]
) -> tuple[staleness.Stale, ...]:
    """The env's staleness alarms; a malformed limit falls back to the defaults here
    (`./stack check` names the bad variable)."""
    try:
        limits = staleness.limits(dict(values), env.name)
    except StackError:
        limits = staleness.default_limits(env.name)
    return tuple(staleness.evaluate(env.name, found, limits))


def status(
    platform: Platform,
    env: Environment,
    client: docker.DockerClient | engine.QuickEngine | None = None,
    services: list[str] | None = None,
    *,
    prepared: Prepared | None = None,
) -> EnvStatus:
    """The environment as it is now. Errors become `error`, never an exception.
    `prepared`: the caller's, when it has read `.env` already (an operation)."""
    error: StackError | None = None
    if prepared is None:
        try:
            prepared = prepare(env)
        except StackError as err:
            error = err
    domain = prepared.values.get(env.domain_var, "") if prepared else ""
    base: dict[str, Any] = {"env": env.name, "project": env.project, "domain": domain}
    found_backups = tuple(backups.list_backups(platform.backups_dir, env.name))
    holder = locks.holder(platform.locks_dir, env.project)
    values = prepared.values if prepared else {}
    base.update(
        backups=found_backups,
        holder=holder,
        died=reap(platform, env),
        stale=stale_backups(env, values, found_backups),
    )
    names: list[str] = []
    try:
        if services is not None:
            names = services
        elif prepared is not None:
            names = compose.service_names(prepared)
    except StackError as err:
        error = err  # still show what runs: containers and volumes need no config
    try:
        endpoint = endpoints.resolve(prepared or env)
        base["engine_host"] = endpoint.machine
        client = client or engine.client(endpoint=endpoint)
        if endpoint.remote:
            started = time.monotonic()
            engine.ping(client)
            base["round_trip"] = time.monotonic() - started
        containers = engine.project_containers(client, env.project)
        volumes = tuple(_volume(client, name) for name in env.expected_volumes)
    except StackError as err:
        if isinstance(err, EngineUnreachable) and not err.message.startswith(f"{env.name}'s"):
            # docker-py's errors come without the engine: name the env's own (when set)
            err = engine.unreachable_for(env, err.__context__)
        return EnvStatus(
            **base,
            error=err.message,
            hint=err.hint,
            engine_unreachable=isinstance(err, EngineUnreachable),
        )
    except Exception as err:  # never raise: the TUI calls this on events
        if not engine.is_engine_error(err):
            raise
        return EnvStatus(
            **base,
            error=f"The Docker engine answered with an error: {err}",
            hint="Check 'docker info'; stack-tui refreshes on the next event.",
        )
    by_service: dict[str, Any] = {}
    for container in containers:
        by_service.setdefault(container.labels.get(engine.SERVICE_LABEL, "?"), container)
    rows = [_service(name, by_service.get(name)) for name in names]
    rows += [_service(name, c) for name, c in sorted(by_service.items()) if name not in names]
    return EnvStatus(
        **base,
        services=tuple(rows),
        volumes=volumes,
        error=error.message if error else "",
        hint=error.hint if error else "",
    )


def database_state(
    platform: Platform, env: Environment, client: docker.DockerClient | None = None
) -> switchover.DatabaseState | None:
    """The copies kept by restores and what an interrupted one left, read from the cluster;
    None when Postgres is not running. Not part of `status()`: it runs a query in the
    container, which the TUI's per-event refresh must not pay."""
    from stack_tui.core import pg, switchover

    try:
        client = client or engine.for_env(env)
        container = engine.service_container(client, env.project, "postgres")
        if container is None or container.status != "running":
            return None
        db = pg.session(client, container, "status")
        journal = switchover.journal_path(platform.locks_dir, env.project)
        return switchover.read_state(db, env.db_name, journal)
    except Exception as err:  # never raise: status, check and the TUI call this
        if isinstance(err, StackError) or engine.is_engine_error(err):
            return None
        raise


def _volume(client: docker.DockerClient | engine.QuickEngine, name: str) -> VolumeStatus:
    labels = engine.volume_labels(client, name)
    if labels is None:
        return VolumeStatus(name, present=False, project_label="")
    return VolumeStatus(name, present=True, project_label=labels.get(engine.PROJECT_LABEL, ""))


def _service(name: str, container: Any | None) -> ServiceStatus:
    if container is None:
        return ServiceStatus(name, "missing", "", "", None)
    attrs = container.attrs
    state = attrs.get("State", {})
    # A stopped container keeps its last health result ("healthy"): it says nothing now.
    health = (state.get("Health") or {}).get("Status", "") if state.get("Running") else ""
    image = attrs.get("Config", {}).get("Image", "")
    pinned_from = (attrs.get("Config", {}).get("Labels") or {}).get(engine.PINNED_FROM_LABEL)
    if pinned_from:  # a rollback pinned the image ID: show the reference it stands for
        image = f"{pinned_from} (pinned)"
    started = _parse_time(state.get("StartedAt", "")) if state.get("Running") else None
    return ServiceStatus(name, state.get("Status", "unknown"), health, image, started)


def _parse_time(value: str) -> float | None:
    if not value or value.startswith("0001"):
        return None
    trimmed = value.rstrip("Z").split(".")[0]
    try:
        return datetime.fromisoformat(trimmed + "+00:00").timestamp()
    except ValueError:
        return None
