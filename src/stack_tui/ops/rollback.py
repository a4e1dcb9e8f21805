"""Roll an environment back to how it was before a recorded deploy (or rollback).

Compose has no rollback. We have the record: every service's image ID and the
compose files from before. The rollback writes those files and an override
that pins each service whose image moved to its old image *ID* (`image:
sha256:...`, `--pull never`: nothing is pulled, a re-pointed tag cannot
interfere), and runs the one `compose up --wait` through core/compose.py with
`-p` and those `-f` files. Services whose image and config did not move keep
their containers (Compose compares config hashes).

Everything that can refuse does so before anything changes: the record
(missing, unreadable, another environment's, nothing before it), every image it
needs (one pruned image names the service that cannot go back), the backup for
`--with-data`. With data, the database is restored first (the restore
operation, all or nothing), then the services: an old application must not meet
a newer schema.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Generator, Iterator
from pathlib import Path

import docker

from stack_tui.core import compose, engine, locks, records
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import Refused
from stack_tui.core.records import Record, ServiceState
from stack_tui.ops import runner
from stack_tui.ops.compose_up import UpOutcome, failure_reasons, fate, up_steps
from stack_tui.ops.events import (
    Caution,
    ConfirmationNeeded,
    Event,
    Outcome,
    Result,
    RolledBack,
    StepFinished,
    StepStarted,
)
from stack_tui.ops.restore import restore

DEFAULT_WAIT_TIMEOUT = 180


def rollback(
    platform: Platform,
    env: Environment,
    *,
    to: str = "",
    with_data: bool = False,
    wait_timeout: int = DEFAULT_WAIT_TIMEOUT,
) -> Iterator[Event]:
    """Go back to the state before record `to` (default: the newest deploy not undone)."""
    arguments = {"to": to, "with_data": with_data}
    return runner.locked(
        platform,
        env,
        "rollback",
        arguments,
        lambda _prepared: _rollback(platform, env, to, with_data, wait_timeout),
    )


def _rollback(
    platform: Platform, env: Environment, to: str, with_data: bool, wait_timeout: int
) -> Iterator[Event]:
    yield StepStarted(env.name, "record", f"reading {to or 'the newest deploy record'}")
    history = records.history(platform, env.name)
    target = records.load(platform, env, to) if to else records.default_target(history)
    if target is None:
        raise Refused(
            f"No deploy of {env.name} to roll back: none is recorded in "
            f"{records.deploys_dir(platform)}, or every one was undone already.",
            _history_hint(env),
        )
    goal = {name: change.before for name, change in target.services.items() if change.before}
    if not goal:
        raise Refused(
            f"Record {target.id} was the first deploy of {env.name}: no service ran "
            "before it, so there is nothing to go back to.",
            "Pick a later record with --to; " + _history_hint(env),
        )
    earlier = records.previous(history, target)
    yield StepFinished(env.name, "record", detail=f"back to before {target.id} ({target.when})")

    client = engine.for_env(env)
    yield StepStarted(env.name, "images", "checking every image the rollback needs is here")
    refuse_missing_images(client, target, goal)
    yield StepFinished(env.name, "images", detail="all present")
    backup = _backup_file(platform, env, target) if with_data else None

    current = records.service_states(client, env.project)
    plan = _plan(current, goal)
    if earlier is None:
        yield Caution(
            env.name,
            f"No record before {target.id} holds the compose files of that "
            "time: the current compose files are used.",
        )
    if backup is not None:
        plan.append(
            f"database: restore {backup.name} (taken before {target.id}); the "
            "database as it is now is backed up first"
        )
    question = ConfirmationNeeded(
        env.name,
        f"Roll {env.name} back to how it was before {target.id} ({target.when})?",
        details=plan,
        require_typing=env.name if env.is_prod else "",
    )
    yield question
    if question.response is not True:
        yield Result(
            env.name,
            "rollback",
            Outcome.CANCELLED,
            summary="Rollback cancelled: nothing changed.",
        )
        return

    files = earlier.compose_files if earlier else None
    record = records.start(
        platform,
        env,
        "rollback",
        current,
        compose_files=files,
        undoes=target.id,
        backup=backup.name if backup else "",
    )
    try:
        restored = "" if backup is None else (yield from _restore_data(platform, env, backup))
        if restored:
            summary = f"{env.name} rollback stopped: {restored}; the services are as they were."
            record = records.finish(platform, record, current, {}, "failed", summary)
            yield Result(
                env.name,
                "rollback",
                Outcome.FAILED,
                summary=summary,
                payload=RolledBack(record.id, target.id),
            )
            return
        outcome = yield from return_to(platform, env, goal, current, files, record.id, wait_timeout)
        after = records.service_states(client, env.project)
        reasons = (
            {}
            if outcome.ok
            else failure_reasons(
                client,
                env,
                outcome,
                {name: state.image_id for name, state in goal.items()},
                wait_timeout,
            )
        )
        results = {
            name: reasons.get(name, _went_back(goal.get(name), current.get(name), after.get(name)))
            for name in sorted(set(goal) | set(after))
        }
        ok = (
            outcome.ok
            and not reasons
            and all(
                name in after and after[name].image_id == state.image_id
                for name, state in goal.items()
            )
        )
        lines = [
            f"{name}: {results[name]} ({fate(current.get(name), after.get(name))})"
            for name in sorted(results)
        ]
        summary = (
            f"{env.name} rolled back to before {target.id}."
            if ok
            else f"{env.name} rollback failed: "
            + ", ".join(f"{name} {why}" for name, why in sorted(reasons.items()))
        )
        record = records.finish(platform, record, after, results, "ok" if ok else "failed", summary)
        yield Result(
            env.name,
            "rollback",
            Outcome.OK if ok else Outcome.FAILED,
            summary=summary,
            details=lines,
            payload=RolledBack(record.id, target.id),
        )
    finally:
        records.finish_interrupted(platform, record, client, current)


def return_to(
    platform: Platform,
    env: Environment,
    goal: dict[str, ServiceState],
    current: dict[str, ServiceState],
    compose_files: dict[str, str] | None,
    name: str,
    wait_timeout: int,
    only: list[str] | None = None,
) -> Generator[Event, None, UpOutcome]:
    """Bring `goal`'s services back to their image IDs (and, when given, the compose files
    of that time): an unlocked step, shared by rollback and the health-gated deploy.

    Only the services that moved (another image or config, or not running) are recreated,
    each pinned to its image ID, and named to Compose with --no-deps: a service that did not
    move is not touched, even when `.env` now names another image for it. Services that
    did not exist then (and `only` is not given) are stopped and removed."""
    moving = sorted(
        service
        for service, state in goal.items()
        if (only is None or service in only) and moved(current.get(service), state)
    )
    pinned = _pinned_env(platform, env, {s: goal[s] for s in moving}, compose_files, name)
    newer = [] if only is not None else sorted(set(current) - set(goal))
    if newer:
        yield StepStarted(env.name, "remove", f"removing {', '.join(newer)} (not there before)")
        compose.run(pinned, "rm", "--stop", "--force", *newer)
        yield StepFinished(env.name, "remove")
    if not moving:
        yield StepFinished(env.name, "up", detail="every service is as recorded already")
        return UpOutcome(None)
    detail = f"docker compose up -d --wait --pull never --no-deps {' '.join(moving)} (pinned)"
    return (
        yield from up_steps(pinned, detail, wait_timeout, "--pull", "never", "--no-deps", *moving)
    )


def moved(now: ServiceState | None, then: ServiceState) -> bool:
    """Whether a service must be recreated to be as recorded."""
    return (
        now is None
        or not now.running
        or now.image_id != then.image_id
        or now.config_hash != then.config_hash
    )


def refuse_missing_images(
    client: docker.DockerClient, target: Record, goal: dict[str, ServiceState]
) -> None:
    """Refused, naming each service that cannot go back, when an image is gone."""
    here = records.image_digests(client)
    gone = [
        f"{name} cannot go back: its image {state.short_image()} is no longer on this machine"
        for name, state in sorted(goal.items())
        if state.image_id not in here
    ]
    if gone:
        raise Refused(
            f"Cannot roll back to before {target.id}: " + "; ".join(gone) + ".",
            "Nothing was changed. Rebuild or pull that image (its ID must match), or "
            "pick another record with --to. 'docker image prune -a' removes images "
            "that no container uses: './stack check' warns when one a record "
            "needs is gone.",
        )


def _pinned_env(
    platform: Platform,
    env: Environment,
    pins: dict[str, ServiceState],
    compose_files: dict[str, str] | None,
    name: str,
) -> Environment:
    """`env` with the recorded compose files (when known) plus an override pinning image IDs,
    written under data/deploys/{name}.compose/ (kept: it shows what the rollback ran)."""
    directory = records.deploys_dir(platform) / f"{name}.compose"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = list(env.compose_files)
    if compose_files:
        files = []
        for file_name, text in compose_files.items():
            path = directory / file_name
            path.write_text(text, encoding="utf-8")
            files.append(path)
    override = directory / "rollback.override.yml"
    lines = [
        "# Generated by stack rollback: each service pinned to its recorded image ID.",
        "services:" if pins else "services: {}",
    ]
    for service, state in sorted(pins.items()):
        label = f"{records.PINNED_FROM_LABEL}: {json.dumps(state.image_ref)}"
        lines += [
            f"  {service}:",
            f"    image: {state.image_id}",
            "    pull_policy: never",
            "    labels:",
            f"      {label}",
        ]
    override.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dataclasses.replace(env, compose_files=(*files, override))


def _plan(current: dict[str, ServiceState], goal: dict[str, ServiceState]) -> list[str]:
    plan = []
    for name in sorted(set(current) | set(goal)):
        now, then = current.get(name), goal.get(name)
        if then is None:
            plan.append(f"{name}: did not run then: stopped and removed")
        elif now is None or not now.running:
            plan.append(f"{name}: not running now: started on {then.short_image()}")
        elif now.image_id != then.image_id:
            plan.append(f"{name}: {now.short_image()} -> {then.short_image()}")
        elif moved(now, then):
            plan.append(f"{name}: same image, config back to the record's (recreated)")
        else:
            plan.append(f"{name}: unchanged ({then.short_image()})")
    return plan


def _went_back(
    goal: ServiceState | None, now: ServiceState | None, after: ServiceState | None
) -> str:
    if goal is None:
        return "removed" if after is None else "kept (it did not run before)"
    if after is None:
        return "not running"
    if after.image_id != goal.image_id:
        return f"on {after.short_image()}, not the recorded {goal.short_image()}"
    if now is not None and now.container_id == after.container_id:
        return "unchanged"
    return "back on its recorded image"


def _backup_file(platform: Platform, env: Environment, target: Record) -> Path:
    if not target.backup:
        raise Refused(
            f"Record {target.id} has no pre-deploy backup (the database was not "
            "running before that deploy): --with-data cannot restore one.",
            "Roll back without --with-data, or pick another record with --to.",
        )
    path = platform.backups_dir / target.backup
    if not path.is_file():
        raise Refused(
            f"The pre-deploy backup of {target.id}, {target.backup}, is no longer in "
            f"{platform.backups_dir} (pruned?).",
            "Roll back without --with-data, or restore another backup with "
            "'./stack backup restore'.",
        )
    return path


def _restore_data(
    platform: Platform, env: Environment, backup: Path
) -> Generator[Event, None, str]:
    """The restore operation inside ours (the lock is ours already); its confirmations go to
    the operator, its Result becomes a step. "" when the database was restored, else why not."""
    yield StepStarted(env.name, "data", f"restoring {backup.name}")
    inner = restore(platform, env, backup)
    why_not = "the restore ended without a result"
    try:
        for event in _lent(env, inner):
            if isinstance(event, Result):
                why_not = "" if event.ok else event.summary
                yield StepFinished(env.name, "data", ok=event.ok, detail=event.summary)
                if not event.ok:
                    for line in event.details:
                        yield Caution(env.name, line)
            else:
                yield event
    finally:
        close = getattr(inner, "close", None)
        if close is not None:  # Ctrl-C: the restore's own cleanup runs now, inside our lock
            close()
    return why_not


def _lent(env: Environment, events: Iterator[Event]) -> Iterator[Event]:
    """Run `events` (an operation) under the lock this rollback holds: lent only while the
    operation's own code runs, never while its events are out with our consumer."""
    while True:
        with locks.lend(env.project):
            event = next(events, None)
        if event is None:
            return
        yield event


def _history_hint(env: Environment) -> str:
    return f"'./stack deploy history{' --dev' if env.name == 'dev' else ''}' lists the records."
