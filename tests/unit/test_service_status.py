"""A service's row from its container's inspect data (ops.status._service): pure logic."""

from __future__ import annotations

from types import SimpleNamespace

from stack_tui.ops.status import _service


def container(running: bool, status: str, health: str) -> SimpleNamespace:
    return SimpleNamespace(
        attrs={
            "State": {
                "Running": running,
                "Status": status,
                "StartedAt": "2026-12-01T21:00:00.000000000Z",
                "Health": {"Status": health},
            },
            "Config": {"Image": "stack-tui-test/postgres:15", "Labels": {}},
        }
    )


def test_a_running_container_shows_its_health() -> None:
    row = _service("postgres", container(True, "running", "healthy"))
    assert (row.state, row.health, row.ok) == ("running", "healthy", True)


def test_a_stopped_container_shows_no_stale_health() -> None:
    """dockerd keeps the last result ("healthy") after the container exited (seen after a
    dockerd restart left prod's containers exited): the row must not say healthy."""
    row = _service("postgres", container(False, "exited", "healthy"))
    assert (row.state, row.health, row.ok) == ("exited", "", False)
