"""Tell people when something needs them: failed operations, failed drills, stale backups.

Delivery is apprise's (ntfy, e-mail, Slack, Matrix, webhooks, ...), configured
by URLs in `STACK_NOTIFY_URLS` (in `.env` or the process environment; commas or
spaces between them). A URL carries credentials, so it is never shown: only its
scheme. One message per event, saying the environment, the operation, the reason
and the command to look closer.

Sending never fails what it reports on: a message that cannot be delivered is
audited (`operation: notify`, `result: failed`) and remembered in
`data/notify.json`, which `status` shows until a later message goes through.
The same file remembers which staleness alarms were already sent, so an alarm
is sent when a limit is crossed, not on every look.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack_tui.core import audit, dotenv
from stack_tui.core.errors import StackError

URLS_KEY = "STACK_NOTIFY_URLS"
STATE_FILE = "notify.json"
#: Seconds one delivery may take: an unreachable server must not hold up the tool.
SEND_TIMEOUT = 10


@dataclass(frozen=True)
class Delivery:
    ok: bool
    reason: str = ""  # why not, from apprise's log (secrets removed); "" when ok
    sent_to: int = 0  # how many URLs were configured


def urls(values: Mapping[str, str]) -> list[str]:
    """The configured URLs: the process environment wins over `.env`."""
    raw = os.environ.get(URLS_KEY) or values.get(URLS_KEY, "")
    return [url for url in re.split(r"[\s,]+", raw) if url]


def shown(url: str) -> str:
    """What may be shown of a URL: its scheme only (the rest may hold a token)."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://***" if sep else "***"


def refused_urls(configured: Iterable[str]) -> list[str]:
    """URLs apprise does not accept (unknown scheme, malformed), as they may be shown."""
    import apprise

    bad = []
    for url in configured:
        if not apprise.Apprise().add(url):
            bad.append(shown(url))
    return bad


def send(
    data_dir: Path,
    values: Mapping[str, str],
    *,
    env: str,
    title: str,
    reason: str,
    look: str,
    failure: bool = True,
) -> Delivery | None:
    """Send one message to every configured URL; None when none is configured.

    Never raises: a failure is audited and remembered for `status`.
    """
    configured = urls(values)
    if not configured:
        return None
    secrets = sorted({*dotenv.secret_values(dict(values)), *configured}, key=len, reverse=True)
    body = dotenv.redact(f"Environment: {env}\n{reason}\nLook closer: {look}", secrets)
    started = time.time()
    try:
        delivery = _deliver(configured, dotenv.redact(title, secrets), body, failure)
    except Exception as err:  # a plugin's bug must not fail the operation
        delivery = Delivery(False, f"{type(err).__name__}: {err}", len(configured))
    reason_shown = dotenv.redact(delivery.reason, secrets)
    _remember_delivery(data_dir, delivery.ok, reason_shown, title)
    with contextlib.suppress(OSError):
        audit.record(
            data_dir / "audit.log",
            operation="notify",
            env=env,
            arguments={"title": title, "to": [shown(u) for u in configured]},
            result="ok" if delivery.ok else "failed",
            started=started,
            detail=reason_shown,
        )
    return Delivery(delivery.ok, reason_shown, len(configured))


def _deliver(configured: list[str], title: str, body: str, failure: bool) -> Delivery:
    import apprise

    sender = apprise.Apprise()
    refused = [shown(u) for u in configured if not sender.add(u)]
    with apprise.LogCapture(level=logging.WARNING) as log:  # type: ignore[no-untyped-call]
        sent = (
            bool(
                sender.notify(
                    body=body,
                    title=title,
                    timeout=SEND_TIMEOUT,
                    notify_type=apprise.NotifyType.FAILURE if failure else apprise.NotifyType.INFO,
                )
            )
            if len(sender)
            else False
        )
        said = log.getvalue() if hasattr(log, "getvalue") else ""
    problems = []
    if refused:
        problems.append(f"not a notification URL apprise knows: {', '.join(refused)}")
    if not sent or said.strip():
        lines = [line.split(" - ", 2)[-1] for line in said.strip().splitlines()]
        problems.append("; ".join(lines[-3:]) or "delivery failed")
    ok = sent and not refused
    return Delivery(ok, "" if ok else ". ".join(problems), len(configured))


# --- state: the last delivery, and which alarms are raised ------------------------------------


def read_state(data_dir: Path) -> dict[str, Any]:
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _write_state(data_dir: Path, state: dict[str, Any]) -> None:
    path = data_dir / STATE_FILE
    temporary = path.with_name(f".{STATE_FILE}.{os.getpid()}")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as sink:
            json.dump(state, sink)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)


def _remember_delivery(data_dir: Path, ok: bool, reason: str, title: str) -> None:
    state = read_state(data_dir)
    if ok:
        state.pop("last_failure", None)
    else:
        state["last_failure"] = {"at": time.time(), "reason": reason, "title": title}
    _write_state(data_dir, state)


def last_failure(data_dir: Path) -> dict[str, Any] | None:
    """The last message that could not be sent (none has been sent since), for `status`."""
    failure = read_state(data_dir).get("last_failure")
    return failure if isinstance(failure, dict) else None


def newly_raised(data_dir: Path, env: str, keys: Iterable[str]) -> list[str]:
    """Record `env`'s raised alarms; return those not raised at the last look."""
    state = read_state(data_dir)
    raised: dict[str, list[str]] = state.get("raised") or {}
    now = sorted(set(keys))
    before = set(raised.get(env, []))
    if now == sorted(before):
        return []
    raised[env] = now
    state["raised"] = raised
    _write_state(data_dir, state)
    return [key for key in now if key not in before]


def check_urls(values: Mapping[str, str]) -> tuple[bool, str]:
    """For `./stack check`: (ok, what to show). No URL configured is fine, and said."""
    try:
        configured = urls(values)
        bad = refused_urls(configured)
    except (StackError, ImportError) as err:
        return False, str(err)
    if not configured:
        return True, f"none configured ({URLS_KEY} is empty): nobody is told about failures"
    if bad:
        return False, (
            f"{URLS_KEY}: apprise refuses {', '.join(bad)} (unknown scheme or "
            "malformed). Fix the URL; ./stack notify test sends a test message."
        )
    return True, ", ".join(shown(u) for u in configured)
