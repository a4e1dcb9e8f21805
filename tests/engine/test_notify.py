"""Notifications delivered for real: apprise's JSON webhook to a receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stack_tui import cli
from stack_tui.core import audit, locks, notify, staleness
from stack_tui.core.environments import Platform
from stack_tui.core.errors import StackError
from stack_tui.core.prepared import Prepared
from stack_tui.ops import alerts
from stack_tui.ops.events import Event, Outcome, Result
from stack_tui.ops.runner import locked
from support import drive, make_platform, result_of


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                receiver.received.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()
                receiver.arrived.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def quiet_platform(tmp_path: Path, receiver: Receiver) -> Platform:
    """A platform (no engine needed) whose .env sends notifications to the receiver."""
    return make_platform(tmp_path, STACK_NOTIFY_URLS=receiver.url)


def run(
    platform: Platform, body_events: list[Event] | None = None, fail: str = "", **options: Any
) -> Result:
    def body(_: Prepared) -> Iterator[Event]:
        if fail:
            raise StackError(fail, "a hint")
        yield from body_events or [
            Result("dev", operation="demo", outcome=Outcome.OK, summary="fine")
        ]

    return result_of(drive(locked(platform, platform.dev, "demo", {}, body, **options)))


def test_failed_operation_sends_one_message_and_success_sends_none(
    quiet_platform: Platform, receiver: Receiver
) -> None:
    assert run(quiet_platform).ok
    assert receiver.received == []  # all is well: nothing sent
    assert not run(quiet_platform, fail="pg_dump failed (exit status 1)").ok
    [message] = receiver.received
    assert message["title"] == "stack: dev demo FAILED"
    assert message["type"] == "failure"
    body = message["message"]
    for part in (
        "Environment: dev",
        "Operation: demo",
        "Outcome: failed",
        "pg_dump failed (exit status 1)",
        "Look closer: ./stack status --dev",
    ):
        assert part in body, body
    [sent] = [e for e in audit.read(quiet_platform.audit_log) if e["operation"] == "notify"]
    assert sent["result"] == "ok" and sent["arguments"]["to"] == ["json://***"]


def test_secrets_never_leave_in_a_message(quiet_platform: Platform, receiver: Receiver) -> None:
    run(quiet_platform, fail="psql said: password pg-secret-8c1f2a rejected")
    [message] = receiver.received
    assert "pg-secret-8c1f2a" not in json.dumps(message)
    assert "***" in message["message"]


def test_a_failed_send_never_fails_the_operation(
    quiet_platform: Platform, receiver: Receiver
) -> None:
    receiver.status = 500
    result = run(quiet_platform, fail="the deploy failed")
    assert result.summary == "the deploy failed"  # the operation's own outcome, unchanged
    assert len(receiver.received) == 1
    [sent] = [e for e in audit.read(quiet_platform.audit_log) if e["operation"] == "notify"]
    assert sent["result"] == "failed" and "500" in sent["detail"], sent
    failure = notify.last_failure(quiet_platform.data)
    assert failure is not None and "500" in failure["reason"]
    receiver.status = 200
    run(quiet_platform, fail="again")
    assert notify.last_failure(quiet_platform.data) is None  # shown until one goes through


def test_unreachable_receiver_is_audited(tmp_path: Path) -> None:
    platform = make_platform(tmp_path, STACK_NOTIFY_URLS="json://127.0.0.1:9/closed")
    assert run(platform, fail="broken").summary == "broken"
    [sent] = [e for e in audit.read(platform.audit_log) if e["operation"] == "notify"]
    assert sent["result"] == "failed"


def test_lock_waited_out_is_a_skip_with_one_message(
    quiet_platform: Platform, receiver: Receiver
) -> None:
    seen: list[locks.Holder | None] = []
    with locks.hold(quiet_platform.locks_dir, quiet_platform.dev.project, "dev", "deploy"):
        result = run(quiet_platform, wait=0.6)
        with (
            pytest.raises(StackError, match="busy: deploy by"),
            locks.hold(
                quiet_platform.locks_dir,
                quiet_platform.dev.project,
                "dev",
                "x",
                wait=0.3,
                waiting=seen.append,
            ),
        ):
            pass
    assert seen and seen[0] is not None and seen[0].operation == "deploy"
    assert result.outcome is Outcome.SKIPPED and "waited 1 s" in result.summary
    [message] = receiver.received
    assert message["title"] == "stack: dev demo SKIPPED (busy)"
    [line] = [e for e in audit.read(quiet_platform.audit_log) if e["operation"] == "demo"]
    assert line["result"] == "skipped"


def test_staleness_alarm_once_per_crossing(quiet_platform: Platform, receiver: Receiver) -> None:
    stale = [staleness.Stale("dev", "backup", None, 3600.0)]
    alerts.staleness_seen(quiet_platform, quiet_platform.dev, stale)
    alerts.staleness_seen(quiet_platform, quiet_platform.dev, stale)
    assert len(receiver.received) == 1
    assert "no good backup at all (limit 1h)" in receiver.received[0]["message"]
    alerts.staleness_seen(quiet_platform, quiet_platform.dev, [])  # fresh again
    alerts.staleness_seen(quiet_platform, quiet_platform.dev, stale)  # crossed again
    assert len(receiver.received) == 2


def test_notify_test_command(
    quiet_platform: Platform, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["notify", "test"], platform=quiet_platform) == cli.EXIT_OK
    [message] = receiver.received
    assert message["title"] == "stack: test message" and message["type"] == "info"
    assert "sent to 1 URL" in capsys.readouterr().out
    receiver.status = 500
    assert cli.main(["notify", "test"], platform=quiet_platform) == cli.EXIT_FAILED
    assert "could not be sent" in capsys.readouterr().err


def test_check_refuses_unknown_urls_masked() -> None:
    ok, shown = notify.check_urls({"STACK_NOTIFY_URLS": "bogus://user:hunter2@example.invalid"})
    assert not ok and "bogus://***" in shown and "hunter2" not in shown
    ok, shown = notify.check_urls({"STACK_NOTIFY_URLS": "json://127.0.0.1:1/x, ntfy://topic"})
    assert ok and shown == "json://***, ntfy://***"
    ok, shown = notify.check_urls({})
    assert ok and "none configured" in shown
