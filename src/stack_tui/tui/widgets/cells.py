"""What the panes' tables show, cell by cell: Textual-free, so that the first frame can
draw the tables (widgets/pane_snapshot.py) without importing DataTable."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from stack_tui.core.backups import BackupInfo, human_size
from stack_tui.ops.status import ServiceStatus

#: A cell: (text, rich style); equality includes the style.
Cell = tuple[str, str]
#: A row: its stable key and its cells.
Row = tuple[str, tuple[Cell, ...]]

SERVICE_COLUMNS = (
    ("service", "service"),
    ("state", "state"),
    ("health", "health"),
    ("since", "up since"),
    ("image", "image"),
)
BACKUP_COLUMNS = (("taken", "taken"), ("size", "size"), ("age", "age"), ("verified", "verified"))


def state_cell(row: ServiceStatus) -> Cell:
    if row.state == "running":
        return ("running", "green")
    if row.state in ("created", "paused", "restarting"):
        return (row.state, "bold yellow")
    return (row.state.upper(), "bold red")


def health_cell(row: ServiceStatus) -> Cell:
    if row.health == "healthy":
        return ("healthy", "green")
    if row.health == "starting":
        return ("starting", "yellow")
    if row.health:
        return (row.health.upper(), "bold red")
    return ("-", "dim")


def short_image(image: str) -> str:
    """`ghcr.io/open-webui/open-webui:main` -> `open-webui:main`: the tag is what differs."""
    return image.rsplit("/", 1)[-1]


def up_since(started: float | None, now: float) -> str:
    """When a running container started: "06:18" today, "27 Nov" before. A clock time, not
    a duration, so the cell stays true without redrawing (only midnight changes it)."""
    if started is None:
        return "-"
    start, today = datetime.fromtimestamp(started), datetime.fromtimestamp(now)
    return start.strftime("%H:%M") if start.date() == today.date() else start.strftime("%d %b")


def coarse_age(seconds: float) -> str:
    """A backup's age at a glance ("<1h", "5h", "3d"); the exact time is in the next column."""
    seconds = max(0.0, seconds)
    if seconds < 3600:
        return "<1h"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def _coarse_age_changes_in(seconds: float) -> float:
    step = 3600 if seconds < 86400 else 86400
    return step - max(0.0, seconds) % step


def next_redraw(started: Sequence[float], taken: Sequence[float], now: float) -> float | None:
    """Seconds until one of these cells reads differently: a backup's coarse age (hourly at
    most) or an up-since time crossing midnight. None when nothing shown can change."""
    waits = [_coarse_age_changes_in(now - at) for at in taken]
    today = datetime.fromtimestamp(now)
    if any(datetime.fromtimestamp(at).date() == today.date() for at in started):
        midnight = datetime.combine(today.date() + timedelta(days=1), datetime.min.time())
        waits.append(time.mktime(midnight.timetuple()) - now)
    return min(waits) if waits else None


def verified_cell(info: BackupInfo) -> Cell:
    """The file's checks in one word or two: a restore drill says more than a checksum."""
    if info.drill is not None and not info.drill.ok:
        return ("DRILL FAILED", "bold red")
    if info.verified is False:
        return ("FAILED", "bold red")
    if info.drill is not None:
        return (f"drilled {info.drill.short()}", "green")
    if info.verified is True:
        return ("ok", "green")
    if info.verified is False:
        return ("FAILED", "bold red")
    return ("-", "dim")


def service_rows(services: Sequence[ServiceStatus], now: float) -> list[Row]:
    return [
        (
            row.service,
            (
                (row.service, "bold"),
                state_cell(row),
                health_cell(row),
                (up_since(row.started if row.state == "running" else None, now), ""),
                (short_image(row.image) or "-", ""),
            ),
        )
        for row in services
    ]


def taken_cell(info: BackupInfo) -> Cell:
    return (info.taken.strftime("%Y-%m-%d %H:%M:%S"), "")


def backup_rows(
    items: Sequence[BackupInfo], now: float, first: Callable[[BackupInfo], Cell] = taken_cell
) -> list[Row]:
    """Newest first, as given; `first`: the first column (the time taken, or the file)."""
    return [
        (
            str(info.path),
            (
                first(info),
                (human_size(info.size), ""),
                (coarse_age(now - info.taken.timestamp()), ""),
                verified_cell(info),
            ),
        )
        for info in items
    ]
