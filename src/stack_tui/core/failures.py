"""Why a service failed to come up, in words, from Compose's progress and the container.

Compose reports failures as JSON lines (`--progress json`) meant for machines
and, for `up --wait`, often only "application not healthy after 180s". The
operator needs the service and the reason: its image could not be had, it
exited with a code, its healthcheck fails (and what the check printed), its
port is taken, or it was still starting when the wait ran out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

PORT_IN_USE = re.compile(
    r"(?:Bind for |listen tcp4? |bind: )?(?:[\d.]+|\[::\]|::)?:(\d+)(?: failed)?"
    r".*(?:port is already allocated|address already in use)"
)
HEALTH_OUTPUT_CHARS = 300


@dataclass
class ComposeErrors:
    """What Compose said went wrong, per service where it said which."""

    by_service: dict[str, str] = field(default_factory=dict)
    message: str = ""  # the final error message ("" when Compose succeeded)

    def add(self, line: str, project: str) -> None:
        """Take in one line of `compose --progress json` output (other lines are ignored)."""
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            return
        if not isinstance(raw, dict):
            return
        if raw.get("error") is True:
            self.message = str(raw.get("message", "")).strip()
            return
        status, text = str(raw.get("status", "")), str(raw.get("text", ""))
        if "Error" not in (status, text):
            return
        reason = text if status == "Error" else status
        kind, _, name = str(raw.get("id", "")).partition(" ")
        service = container_service(name, project) if kind == "Container" else kind
        if service:
            self.by_service[service] = reason.strip()


def container_service(container_name: str, project: str) -> str:
    """`{project}-{service}-{n}` -> service."""
    if not container_name.startswith(f"{project}-"):
        return ""
    return container_name.removeprefix(f"{project}-").rsplit("-", 1)[0]


def plain(message: str) -> str:
    """Compose/daemon error text without its boilerplate prefix."""
    return message.removeprefix("Error response from daemon: ").strip()


def explain(
    service: str,
    container: dict[str, Any] | None,
    errors: ComposeErrors,
    project: str,
    image_ref: str,
    image_missing: bool,
    wait_timeout: int,
) -> str:
    """Why `service` is not up and healthy, in words; "" when it is."""
    own = errors.by_service.get(service, "")
    if image_missing:
        reason = plain(own or errors.message) or "no registry answered"
        return f"image {image_ref} is not on this machine and pulling it failed: {reason}"
    port = _port_in_use(own, errors.message, service, project)
    if port:
        return f"port {port} is already in use on this host (another program or container holds it)"
    if container is None:
        detail = plain(own or errors.message)
        return "no container was created" + (f": {detail}" if detail else "")
    state = container.get("State", {})
    status = state.get("Status", "")
    if state.get("OOMKilled"):
        return "was killed for lack of memory (out of memory)"
    if status in ("exited", "dead"):
        return f"exited with code {state.get('ExitCode', '?')}"
    restarts = int(container.get("RestartCount") or 0)
    if status == "restarting" or (restarts and status == "running"):
        code = state.get("ExitCode") or "?"
        return f"keeps restarting ({restarts} restarts; it last exited with code {code})"
    if status == "created":
        detail = plain(own or errors.message)
        return "was created but never started" + (f": {detail}" if detail else "")
    health = state.get("Health") or {}
    check = _last_check(health)
    if health.get("Status") == "unhealthy":
        return f"healthcheck failing: {check}"
    if health.get("Status") == "starting":
        failing = f"; healthcheck failing: {check}" if health.get("FailingStreak") else ""
        return f"timed out after {wait_timeout} s waiting for it to be healthy{failing}"
    if status != "running":
        return f"is {status or 'in an unknown state'}"
    return ""


def _port_in_use(own: str, message: str, service: str, project: str) -> str:
    for text in (own, message):
        found = PORT_IN_USE.search(text)
        if found and (text is own or f"{project}-{service}-" in text):
            return found.group(1)
    return ""


def _last_check(health: dict[str, Any]) -> str:
    log = health.get("Log") or []
    if not log:
        return "no check has finished yet"
    last = log[-1]
    output = " ".join(str(last.get("Output", "")).split())[:HEALTH_OUTPUT_CHARS]
    code = last.get("ExitCode", "?")
    return f"exit {code}, {output!r}" if output else f"exit {code}, no output"
