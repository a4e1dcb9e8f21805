"""Backup files: names, listing, verification and retention.

A backup is `{env}_{YYYYMMDD_HHMMSS}.sql.gz` in `data/backups/`. Nothing
else ever carries such a name: a dump is written under a temporary name
(`.{name}.partial`), verified, then renamed. Files are 0600, the directory 0700.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

NAME_PATTERN = re.compile(r"^(dev|prod)_(\d{8}_\d{6})\.sql\.gz$")
TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"
TRAILER = b"-- PostgreSQL database dump complete"
DEFAULT_KEEP = 5


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    env: str
    taken: datetime
    size: int
    verified: bool | None = None  # None: not checked (listing stays cheap)

    @property
    def name(self) -> str:
        return self.path.name

    def age(self, now: float | None = None) -> float:
        return (now or time.time()) - self.taken.timestamp()


def backup_name(env: str, when: datetime) -> str:
    return f"{env}_{when.strftime(TIMESTAMP_FORMAT)}.sql.gz"


def parse_name(name: str) -> tuple[str, datetime] | None:
    """(env, time) for a backup's file name; None for any other name."""
    match = NAME_PATTERN.match(name)
    if not match:
        return None
    try:
        return match.group(1), datetime.strptime(match.group(2), TIMESTAMP_FORMAT)
    except ValueError:
        return None


def list_backups(directory: Path, env: str | None = None) -> list[BackupInfo]:
    """Backups in `directory` (of one env, or all), newest first. Other files are ignored."""
    found: list[BackupInfo] = []
    try:
        entries = list(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    for entry in entries:
        parsed = parse_name(entry.name)
        if parsed is None or (env is not None and parsed[0] != env):
            continue
        try:
            stat = entry.stat()
        except OSError:
            continue
        if not entry.is_file():
            continue
        found.append(BackupInfo(entry, parsed[0], parsed[1], stat.st_size))
    return sorted(found, key=lambda b: (b.taken, b.name), reverse=True)


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
