"""`compose up --wait` as a step that deploy and rollback share, and what failed, in words.

Compose's JSON progress becomes ServiceProgress events (never raw JSON on the
operator's screen); its errors are kept per service, and after a failure each
service that is not up and healthy gets a reason (core/failures.py) and a word
on whether it still runs its previous container or was replaced.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import docker

from stack_tui.core import compose, engine
from stack_tui.core.environments import Environment
from stack_tui.core.errors import StackError
from stack_tui.core.failures import ComposeErrors, container_service, explain, plain
from stack_tui.core.prepared import Prepared
from stack_tui.core.records import ServiceState, image_present
from stack_tui.ops.events import Event, OutputLine, ServiceProgress, StepFinished, StepStarted


@dataclass
class UpOutcome:
    error: StackError | None
    errors: ComposeErrors = field(default_factory=ComposeErrors)

    @property
    def ok(self) -> bool:
        return self.error is None

    def reason(self) -> str:
        """What Compose said went wrong, for a failure no single service explains."""
        if self.errors.message:
            return plain(self.errors.message)
        return self.error.message.splitlines()[0] if self.error else ""


def up_steps(
    target: compose.Target, detail: str, wait_timeout: int, *args: str
) -> Generator[Event, None, UpOutcome]:
    """Run `compose up -d --wait ARGS` in the environment (whose compose files may include an
    override); given the operation's Prepared, `.env` is not read again."""
    env = target.env if isinstance(target, Prepared) else target
    yield StepStarted(env.name, "up", detail)
    errors = ComposeErrors()
    error: StackError | None = None
    try:
        yield from _remove_compose_leftovers(target)
        for line in compose.stream(
            target,
            "--progress",
            "json",
            "up",
            "-d",
            "--wait",
            "--wait-timeout",
            str(wait_timeout),
            *args,
        ):
            errors.add(line, env.project)
            event = progress_event(env, line)
            if event is not None:
                yield event
    except StackError as err:
        error = err
    yield StepFinished(env.name, "up", ok=error is None)
    return UpOutcome(error, errors)


def _remove_compose_leftovers(target: compose.Target) -> Iterator[Event]:
    env = target.env if isinstance(target, Prepared) else target
    client = engine.for_env(target)
    for container in engine.compose_leftovers(client, env.project):
        with engine.translated():
            container.remove(force=True)
        yield OutputLine(
            env.name,
            f"removed {container.name}, left by a Compose that was stopped while it replaced "
            "a container",
            source="up",
        )


def progress_event(env: Environment, line: str) -> Event | None:
    """Compose's `--progress json` line -> ServiceProgress; its final error line -> None (the
    failure is explained per service afterwards); anything else stays raw output."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError:
        return OutputLine(env.name, line, source="compose")
    if isinstance(raw, dict) and raw.get("error") is True:
        return None
    if not isinstance(raw, dict) or "id" not in raw:
        return OutputLine(env.name, line, source="compose")
    kind, _, name = str(raw["id"]).partition(" ")
    state = str(raw.get("status") or raw.get("text") or "")
    if kind == "Container":
        return ServiceProgress(env.name, container_service(name, env.project), state)
    if not name:  # an image pull, by service: {"id": "agent", "text": "Pulling"}
        text = str(raw.get("text") or "")
        return ServiceProgress(env.name, kind, "pull failed" if text == "Error" else text.lower())
    return OutputLine(env.name, f"{kind} {name}: {state}", source="compose")


def failure_reasons(
    client: docker.DockerClient,
    env: Environment,
    outcome: UpOutcome,
    image_refs: dict[str, str],
    wait_timeout: int,
) -> dict[str, str]:
    """service -> why it is not up and healthy (only the services that are not)."""
    containers: dict[str, dict[str, Any]] = {}
    for container in engine.project_containers(client, env.project):
        service = container.labels.get(engine.SERVICE_LABEL, "")
        containers.setdefault(service, container.attrs)
    reasons = {}
    for service, ref in sorted(image_refs.items()):
        missing = bool(ref) and not image_present(client, ref)
        why = explain(
            service,
            containers.get(service),
            outcome.errors,
            env.project,
            ref,
            missing,
            wait_timeout,
        )
        if why:
            reasons[service] = why
    if not outcome.ok and not reasons:  # e.g. a network Compose could not create
        reasons["compose up"] = f"failed: {outcome.reason()}"
    return reasons


def fate(before: ServiceState | None, after: ServiceState | None) -> str:
    """Whether a service still runs what ran before, in words."""
    if after is None:
        return "has no container" if before is None else "its previous container is gone"
    if before is None:
        return "new container"
    if after.container_id != before.container_id:
        return "replaced"
    if after.running:
        return "still runs its previous container"
    if not before.running:
        return "its previous container, which was not running before this deploy either"
    return "its previous container, stopped"
