"""When to tell someone, and what to tell them (core/notify.py does the sending).

- an operation that failed, was interrupted or died;
- a scheduled operation that gave up waiting for the environment's lock;
- a staleness limit crossed (once per crossing, not on every look).

Every function here returns quietly: alerting never changes an operation's outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stack_tui.core import dotenv, notify, staleness
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import StackError

#: Outcomes (as audited) that someone must hear about.
ALERTING = ("failed", "interrupted", "died")


def values(platform: Platform) -> dict[str, str]:
    """`.env` as read for alerting: an unreadable file still lets the process env configure it."""
    try:
        return dotenv.parse(platform.dotenv)
    except StackError:
        return {}


def env_flag(env: Environment) -> str:
    return "" if env.is_prod else " --dev"


def operation_ended(
    platform: Platform,
    env: Environment,
    operation: str,
    outcome: str,
    detail: str,
    log: Path | None,
) -> notify.Delivery | None:
    """One message for an operation that ended `failed`, `interrupted` or `died`."""
    if outcome not in ALERTING:
        return None
    look = f"./stack status{env_flag(env)}"
    if log is not None:
        look += f"; the operation's log: {log}"
    if operation == "drill":
        look = f"./stack backup list; {look}"
    return notify.send(
        platform.data,
        values(platform),
        env=env.name,
        title=f"stack: {env.name} {operation} {outcome.upper()}",
        reason=f"Operation: {operation}\nOutcome: {outcome}\nReason: {detail}",
        look=look,
    )


def lock_waited_out(
    platform: Platform, env: Environment, operation: str, detail: str
) -> notify.Delivery | None:
    return notify.send(
        platform.data,
        values(platform),
        env=env.name,
        title=f"stack: {env.name} {operation} SKIPPED (busy)",
        reason=f"Operation: {operation}\nOutcome: skipped: gave up waiting for "
        f"the environment's lock\nReason: {detail}",
        look=f"./stack status{env_flag(env)}",
    )


def staleness_seen(
    platform: Platform, env: Environment, stale: Sequence[staleness.Stale]
) -> notify.Delivery | None:
    """Alarm for limits crossed since the last look; nothing while nothing new is stale."""
    crossed = notify.newly_raised(platform.data, env.name, [s.key for s in stale])
    if not crossed:
        return None
    lines = [s.message() for s in stale if s.key in crossed]
    command = "./stack backup" if env.is_prod else "./stack backup --dev"
    return notify.send(
        platform.data,
        values(platform),
        env=env.name,
        title=f"stack: {env.name} backups STALE",
        reason="Operation: backups\nReason: " + "; ".join(lines),
        look=f"./stack backup list; take one: {command}; drill it: "
        f"./stack backup drill{env_flag(env)}",
    )
