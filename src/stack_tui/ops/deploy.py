"""Deploy one environment: guard, volume check, pre-deploy backup, up, wait, attach Traefik.

The order is the safety argument: nothing is started before the operator has
seen (and, for a missing volume, accepted) what will happen, and nothing is
replaced before the current database is safely on disk.

Every deploy leaves a record (core/records.py) of what ran before and after,
so it can be undone. A failure names each failed service and why, in words.
Health gate (prod by default): when a service is not healthy in time, the
services this deploy changed go back to their previous images at once.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker

from stack_tui.core import compose, dotenv, endpoints, engine, records
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import EngineUnreachable, Refused
from stack_tui.core.prepared import Prepared
from stack_tui.core.records import ServiceState
from stack_tui.ops import offsite, runner
from stack_tui.ops.backup import backup_steps
from stack_tui.ops.compose_up import failure_reasons, fate, up_steps
from stack_tui.ops.events import (
    Caution,
    ConfirmationNeeded,
    Deployed,
    Event,
    Outcome,
    Result,
    StepFinished,
    StepStarted,
)
from stack_tui.ops.rollback import return_to
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
    roll_back: bool | None = None,
) -> Iterator[Event]:
    """Deploy `env`; the last event is a Result listing every service's state and health.

    `roll_back` (default: prod yes, dev no): when a changed service is not healthy within
    `wait_timeout`, the changed services go back to their previous images and config."""
    gate = env.is_prod if roll_back is None else roll_back
    arguments = {"accept_new_volumes": accept_new_volumes, "roll_back": gate}
    return offsite.copy_after(
        platform,
        env,
        runner.locked(
            platform,
            env,
            "deploy",
            arguments,
            lambda prepared: _deploy(platform, prepared, accept_new_volumes, wait_timeout, gate),
        ),
        reason="pre-deploy",
    )


def _deploy(
    platform: Platform,
    prepared: Prepared,
    accept_new_volumes: bool,
    wait_timeout: int,
    roll_back: bool,
) -> Iterator[Event]:
    env = prepared.env
    yield StepStarted(env.name, "config", "validating .env and the compose files")
    compose.ready(prepared)  # no .env: refused plainly
    yield from _placeholder_secrets(platform, env, prepared.values)
    rendered = compose.render_config(prepared).get("services", {})
    services = sorted(rendered)
    client = engine.for_env(prepared)
    yield StepFinished(env.name, "config", detail=", ".join(services))

    if not (yield from _check_volumes(env, client, accept_new_volumes)):
        yield Result(
            env.name,
            "deploy",
            Outcome.CANCELLED,
            summary="Deploy cancelled: the missing volume was not accepted.",
            details=[
                "Nothing was changed. To create it anyway: "
                + (
                    "./stack deploy --accept-new-volumes --yes --confirm prod"
                    if env.is_prod
                    else "./stack dev deploy --accept-new-volumes"
                )
            ],
        )
        return

    remote = endpoints.resolve(prepared)
    if remote.remote:
        yield from _check_bind_sources(remote, client, rendered)

    backup = yield from _pre_deploy_backup(platform, prepared, client)

    before = records.service_states(client, env.project)
    record = records.start(platform, env, "deploy", before, backup=backup.name if backup else "")
    try:
        for mount in () if remote.remote else env.bind_mount_paths():
            mount.mkdir(parents=True, exist_ok=True)
        outcome = yield from up_steps(
            prepared,
            f"docker compose up -d --wait ({env.project})",
            wait_timeout,
            "--remove-orphans",
        )
        if outcome.ok:
            yield from _attach_traefik(platform, client)
        else:
            engine.ping(client)  # an engine that went away is said as such, at once
        final = status(platform, env, client, services, prepared=prepared)
        image_refs = {name: str(rendered[name].get("image", "")) for name in services}
        reasons = (
            {}
            if outcome.ok and all(row.ok for row in final.services)
            else (failure_reasons(client, env, outcome, image_refs, wait_timeout))
        )
        after = records.service_states(client, env.project)
        payload = Deployed(_as_data(final.services), record=record.id)
        if not reasons:
            record = records.finish(
                platform,
                record,
                after,
                _results(before, after, {}),
                "ok",
                f"{len(final.services)} services healthy",
            )
            yield Result(
                env.name,
                "deploy",
                Outcome.OK,
                summary=f"{env.name} deployed: {len(final.services)} services healthy.",
                details=[_describe(row) for row in final.services],
                payload=payload,
            )
            return
        yield from _failed(
            platform,
            prepared,
            client,
            record,
            before,
            after,
            reasons,
            roll_back,
            wait_timeout,
            payload,
        )
    except EngineUnreachable:
        raise _cut_short(remote, record) from None
    finally:
        records.finish_interrupted(platform, record, client, before)


def _cut_short(endpoint: endpoints.Endpoint, record: records.Record) -> EngineUnreachable:
    """The engine went away after the deploy began changing containers: what may be left,
    and what repairs it once the engine answers again."""
    rollback = "./stack rollback" + (" --dev" if endpoint.env == "dev" else "")
    deploy = "./stack deploy" if endpoint.env == "prod" else f"./stack {endpoint.env} deploy"
    return EngineUnreachable(
        f"{endpoint.describe()} stopped answering during the deploy: its services may be "
        f"part replaced (record {record.id}: interrupted).",
        f"Once it answers (docker -H {endpoint.via or endpoint.host} info): ./stack status "
        f"shows what runs; {deploy} finishes the deploy, or {rollback} goes back to before it.",
    )


def _failed(
    platform: Platform,
    prepared: Prepared,
    client: docker.DockerClient,
    record: records.Record,
    before: dict[str, ServiceState],
    after: dict[str, ServiceState],
    reasons: dict[str, str],
    roll_back: bool,
    wait_timeout: int,
    payload: Deployed,
) -> Iterator[Event]:
    """Say which service failed and why, which still run their previous containers and which
    were replaced; with the health gate, put the changed services back first."""
    env = prepared.env
    summary = (
        f"{env.name} deploy failed: "
        + "; ".join(f"{name} {why}" for name, why in sorted(reasons.items()))
        + "."
    )
    lines = [
        f"{name}: {reasons.get(name, 'healthy')} ({fate(before.get(name), after.get(name))})"
        for name in sorted(set(before) | set(after) | set(reasons))
    ]
    changed = [
        name
        for name, change in _changes(before, after).items()
        if change.replaced or change.image_changed or change.config_changed
    ]
    # The failed containers' logs before a rollback replaces them.
    for name, why in sorted(reasons.items()):
        if why.startswith(("exited", "keeps restarting")):
            lines += [f"--- last log lines of {name} ---", *_last_logs(client, prepared, name)]
    results = _results(before, after, reasons)
    verdict = "failed"
    went_back = [name for name in changed if name in before]
    if roll_back and went_back:
        rollback_ok = yield from _undo(
            platform, env, client, record, before, went_back, wait_timeout
        )
        after = records.service_states(client, env.project)
        for name in went_back:
            results[name] = f"{results[name]}; rolled back to its previous image"
        verdict = "rolled back" if rollback_ok else "failed"
        summary += (
            f" Rolled back: {', '.join(went_back)} (previous images and config)."
            if rollback_ok
            else f" The rollback of {', '.join(went_back)} failed too: see ./stack status."
        )
        lines.append(
            "After the rollback: "
            + ", ".join(
                f"{name} {fate(before.get(name), after.get(name))}" for name in sorted(after)
            )
        )
    else:
        went_back = []
        if changed and any(name in before for name in changed):
            lines.append(
                f"To go back: ./stack rollback{' --dev' if env.name == 'dev' else ''}"
                f" (undoes {record.id})."
            )
    new = [name for name in changed if name not in before]
    if new and roll_back:
        lines.append(
            f"New in this deploy, left as they are (nothing ran before them): {', '.join(new)}."
        )
    records.finish(
        platform, record, after, results, verdict, summary, rolled_back=verdict == "rolled back"
    )
    yield Result(
        env.name,
        "deploy",
        Outcome.FAILED,
        summary=summary,
        details=lines,
        payload=replace(payload, failed=sorted(reasons), rolled_back=went_back),
    )


def _undo(
    platform: Platform,
    env: Environment,
    client: docker.DockerClient,
    record: records.Record,
    before: dict[str, ServiceState],
    services: list[str],
    wait_timeout: int,
) -> Generator[Event, None, bool]:
    """The health gate's rollback: the changed services that ran before go back to their
    previous images and the compose files of the previous record. True when they did."""
    yield Caution(
        env.name,
        f"Rolling back {', '.join(services)} to the previous images "
        "(--no-rollback keeps the failed state).",
    )
    earlier = records.previous(records.history(platform, env.name), record)
    outcome = yield from return_to(
        platform,
        env,
        {name: before[name] for name in services},
        records.service_states(client, env.project),
        earlier.compose_files if earlier else None,
        record.id,
        wait_timeout,
        only=services,
    )
    return outcome.ok


def _changes(
    before: dict[str, ServiceState], after: dict[str, ServiceState]
) -> dict[str, records.ServiceChange]:
    return {
        name: records.ServiceChange(before.get(name), after.get(name))
        for name in sorted(set(before) | set(after))
    }


def _results(
    before: dict[str, ServiceState], after: dict[str, ServiceState], reasons: dict[str, str]
) -> dict[str, str]:
    results = {}
    for name, change in _changes(before, after).items():
        if name in reasons:
            results[name] = _failed_result(reasons[name])
        elif change.image_changed or change.config_changed or change.replaced:
            results[name] = "healthy (updated)" if change.after else "removed"
        else:
            results[name] = "unchanged"
    for name in reasons.keys() - results.keys():
        results[name] = _failed_result(reasons[name])
    return results


def _check_bind_sources(
    endpoint: endpoints.Endpoint, client: docker.DockerClient, rendered: dict[str, Any]
) -> Iterator[Event]:
    """On another host, Compose renders bind-mount paths on this machine and the engine
    creates a missing source empty: the env's data root there is required, and every source
    must exist there already (refused as loudly as a missing volume, before anything runs)."""
    env = endpoint.env
    setting = f"STACK_{env.upper()}_DATA_ROOT"
    if not endpoint.data_root:
        raise Refused(
            f"{env} is on {endpoint.describe()}, but {setting} is not set: Compose would "
            "mount directories of this machine's path on that host, created empty.",
            f"Set {setting} in .env to the data directory on {endpoint.machine} (holding "
            "qdrant, openwebui, letsencrypt).",
        )
    yield StepStarted(env, "bind mounts", f"checking the data directories on {endpoint.machine}")
    sources = sorted(
        {
            str(mount["source"])
            for service in rendered.values()
            for mount in service.get("volumes") or []
            if mount.get("type") == "bind"
        }
    )
    image = next((str(s["image"]) for s in rendered.values() if _present(client, s)), "")
    missing = engine.missing_bind_sources(client, image, sources) if image and sources else []
    if missing:
        yield StepFinished(env, "bind mounts", ok=False, detail=f"missing: {', '.join(missing)}")
        raise Refused(
            f"{env}'s data directories are missing on {endpoint.machine}: "
            f"{', '.join(missing)}. A deploy would create them empty. Nothing was changed.",
            f"Restore or create them there (check {setting}), then deploy again.",
        )
    yield StepFinished(env, "bind mounts", detail=f"{len(sources)} present on {endpoint.machine}")


def _present(client: docker.DockerClient, service: dict[str, Any]) -> bool:
    try:
        engine.call(lambda: client.images.get(str(service.get("image", ""))))
    except docker.errors.DockerException:
        return False
    return True


def _check_volumes(
    env: Environment, client: docker.DockerClient, accept_new_volumes: bool
) -> Generator[Event, None, bool]:
    """Warn loudly for each missing expected volume; True when the deploy may go on."""
    yield StepStarted(env.name, "volumes", "checking the expected volumes exist")
    missing = [name for name in env.expected_volumes if not engine.volume_exists(client, name)]
    for name in missing:
        yield Caution(env.name, missing_volume_warning(name))
    yield StepFinished(
        env.name,
        "volumes",
        ok=not missing,
        detail=f"missing: {', '.join(missing)}" if missing else "all present",
    )
    if not missing or (accept_new_volumes and not env.is_prod):
        return True  # an empty prod volume always needs prod's name typed or given
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


def _placeholder_secrets(
    platform: Platform, env: Environment, values: Mapping[str, str]
) -> Iterator[Event]:
    """Secrets still holding .env.example's value (as `check` finds them): prod refuses
    to deploy with them, dev warns."""
    found = dotenv.placeholders(values, dotenv.example(platform.root))
    if not found:
        return
    names = ", ".join(found)
    if env.is_prod:
        raise Refused(
            f"Refusing to deploy prod: {names} still hold the .env.example placeholder.",
            "Set real values in .env (the value is not shown here), then deploy again.",
        )
    yield Caution(
        env.name,
        f"{names} still hold the .env.example placeholder (dev only: "
        "prod refuses to deploy with them).",
    )


def _pre_deploy_backup(
    platform: Platform, prepared: Prepared, client: docker.DockerClient
) -> Generator[Event, None, Path | None]:
    env = prepared.env
    container = engine.service_container(client, env.project, "postgres")
    if container is None or container.status != "running":
        yield Caution(
            env.name,
            f"{env.name}'s Postgres is not running: nothing to back up yet (no pre-deploy backup).",
        )
        return None
    return (yield from backup_steps(platform, prepared, reason="pre-deploy"))


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


def _last_logs(client: docker.DockerClient, prepared: Prepared, service: str) -> list[str]:
    container = engine.service_container(client, prepared.env.project, service)
    if container is None:
        return ["(no container)"]
    raw = engine.call(lambda: container.logs(tail=FAILED_LOG_LINES))
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return [prepared.redact(line) for line in text.splitlines()] or ["(no output)"]


def _failed_result(reason: str) -> str:
    return reason if reason.startswith("failed") else f"failed: {reason}"
