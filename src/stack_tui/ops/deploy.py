"""Deploy one environment: guard, volume check, pre-deploy backup, up, wait, attach Traefik.

The order is the safety argument: nothing is started before the operator has
seen (and, for a missing volume, accepted) what will happen, and nothing is
replaced before the current database is safely on disk.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator

import docker

from stack_tui.core import compose, dotenv, engine
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import StackError
from stack_tui.ops import offsite, runner
from stack_tui.ops.backup import backup_steps
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
from stack_tui.ops.status import ServiceStatus, status

DEFAULT_WAIT_TIMEOUT = 180
FAILED_LOG_LINES = 30


def missing_volume_warning(volume: str) -> str:
    """The spec's exact text (docs/spec: Volume Existence Check)."""
    return (
        f"WARNING: Docker volume '{volume}' does not exist!\n"
        "A new empty volume will be created. This may cause DATA LOSS."
    )


def deploy(
    platform: Platform,
    env: Environment,
    *,
    accept_new_volumes: bool = False,
    wait_timeout: int = DEFAULT_WAIT_TIMEOUT,
) -> Iterator[Event]:
    """Deploy `env`; the last event is a Result listing every service's state and health."""
    arguments = {"accept_new_volumes": accept_new_volumes}
    return offsite.copy_after(
        platform,
        env,
        runner.locked(
            platform,
            env,
            "deploy",
            arguments,
            lambda: _deploy(platform, env, accept_new_volumes, wait_timeout),
        ),
        reason="pre-deploy",
    )


def _deploy(
    platform: Platform, env: Environment, accept_new_volumes: bool, wait_timeout: int
) -> Iterator[Event]:
    yield StepStarted(env.name, "config", "validating .env and the compose files")
    dotenv.parse(env.env_file)
    services = sorted(compose.render_config(env).get("services", {}))
    client = engine.client()
    yield StepFinished(env.name, "config", detail=", ".join(services))

    if not (yield from _check_volumes(env, client, accept_new_volumes)):
        yield Result(
            env.name,
            "deploy",
            ok=False,
            summary="Deploy cancelled: the missing volume was not accepted.",
            details=[
                "Nothing was changed. To create it anyway: "
                f"./stack {'dev ' if env.name == 'dev' else ''}deploy "
                "--accept-new-volumes"
            ],
            data={"error": "Refused"},
        )
        return

    yield from _pre_deploy_backup(platform, env, client)

    for mount in env.bind_mount_paths():
        mount.mkdir(parents=True, exist_ok=True)
    yield StepStarted(env.name, "up", f"docker compose up -d --wait ({env.project})")
    up_error: StackError | None = None
    try:
        for line in compose.stream(
            env,
            "--progress",
            "json",
            "up",
            "-d",
            "--wait",
            "--wait-timeout",
            str(wait_timeout),
            "--remove-orphans",
        ):
            yield _progress_event(env, line)
    except StackError as err:
        up_error = err
    yield StepFinished(env.name, "up", ok=up_error is None)

    if up_error is None:
        yield from _attach_traefik(platform, client)

    final = status(platform, env, client, services)
    summary_rows = [_describe(row) for row in final.services]
    failed = [row for row in final.services if not row.ok]
    if up_error is None and not failed:
        yield Result(
            env.name,
            "deploy",
            ok=True,
            summary=f"{env.name} deployed: {len(final.services)} services healthy.",
            details=summary_rows,
            data={"services": _as_data(final.services)},
        )
        return
    details = [*summary_rows]
    if up_error is not None:
        details.append(up_error.message)
    for row in failed:
        details += [f"--- last log lines of {row.service} ---", *_last_logs(client, env, row)]
    names = ", ".join(row.service for row in failed) or "compose up"
    yield Result(
        env.name,
        "deploy",
        ok=False,
        summary=f"{env.name} deploy failed: {names}.",
        details=details,
        data={"services": _as_data(final.services)},
    )


def _check_volumes(
    env: Environment, client: docker.DockerClient, accept_new_volumes: bool
) -> Generator[Event, None, bool]:
    """Warn loudly for each missing expected volume; True when the deploy may go on."""
    yield StepStarted(env.name, "volumes", "checking the expected volumes exist")
    missing = [name for name in env.expected_volumes if not engine.volume_exists(client, name)]
    for name in missing:
        yield Warning(env.name, missing_volume_warning(name))
    yield StepFinished(
        env.name,
        "volumes",
        ok=not missing,
        detail=f"missing: {', '.join(missing)}" if missing else "all present",
    )
    if not missing or accept_new_volumes:
        return True
    question = ConfirmationNeeded(
        env.name,
        f"Create new, EMPTY volume(s) for {env.name} and deploy?",
        details=[missing_volume_warning(name) for name in missing]
        + [
            "If this environment had data, it is in a volume under another name: "
            "run './stack check' to look for orphaned volumes first."
        ],
        require_typing=env.name,
    )
    yield question
    return question.response is True


def _pre_deploy_backup(
    platform: Platform, env: Environment, client: docker.DockerClient
) -> Iterator[Event]:
    container = engine.service_container(client, env.project, "postgres")
    if container is None or container.status != "running":
        yield Warning(
            env.name,
            f"{env.name}'s Postgres is not running: nothing to back up yet (no pre-deploy backup).",
        )
        return
    yield from backup_steps(platform, env, reason="pre-deploy")


def _progress_event(env: Environment, line: str) -> Event:
    """Compose's `--progress json` line -> ServiceProgress; anything else stays raw output."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError:
        return OutputLine(env.name, line, source="compose")
    if not isinstance(raw, dict) or "id" not in raw:
        return OutputLine(env.name, line, source="compose")
    kind, _, name = str(raw["id"]).partition(" ")
    state = str(raw.get("status") or raw.get("text") or "")
    if kind == "Container":
        prefix = f"{env.project}-"
        service = name.removeprefix(prefix).rsplit("-", 1)[0]
        return ServiceProgress(env.name, service, state)
    return OutputLine(env.name, f"{kind} {name}: {state}", source="compose")


def _attach_traefik(platform: Platform, client: docker.DockerClient) -> Iterator[Event]:
    """The prod Traefik routes dev too: connect it to the dev network when both exist."""
    traefik = engine.service_container(client, platform.prod_project, "traefik")
    network_name = platform.dev.network
    try:
        network = engine.call(lambda: client.networks.get(network_name))
    except docker.errors.NotFound:
        network = None
    if traefik is None or network is None:
        return
    yield StepStarted("prod", "traefik", f"attaching the prod Traefik to {network_name}")
    attached = network_name in traefik.attrs["NetworkSettings"]["Networks"]
    if not attached:
        engine.call(lambda: network.connect(traefik))
    yield StepFinished("prod", "traefik", detail="already attached" if attached else "attached")


def _describe(row: ServiceStatus) -> str:
    health = f" ({row.health})" if row.health else ""
    return f"{row.service}: {row.state}{health}"


def _as_data(rows: tuple[ServiceStatus, ...]) -> dict[str, dict[str, str]]:
    return {
        row.service: {"state": row.state, "health": row.health, "image": row.image} for row in rows
    }


def _last_logs(client: docker.DockerClient, env: Environment, row: ServiceStatus) -> list[str]:
    container = engine.service_container(client, env.project, row.service)
    if container is None:
        return ["(no container)"]
    raw = engine.call(lambda: container.logs(tail=FAILED_LOG_LINES))
    hidden = compose.secrets(env)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return [dotenv.redact(line, hidden) for line in text.splitlines()] or ["(no output)"]
