"""How old the newest good backup and the newest drilled backup may be, per environment.

A backup that silently stopped happening is the failure operators find out
about on the day they need it. The limits come from `.env` (or the process
environment, which wins, as with Compose):

    STACK_PROD_MAX_BACKUP_AGE=26h   STACK_PROD_MAX_DRILL_AGE=8d
    STACK_DEV_MAX_BACKUP_AGE=off    STACK_DEV_MAX_DRILL_AGE=off

A duration is a whole number with s, m, h or d (`90m`, `26h`, `8d`), or `off`.
The age of a backup is measured from when it was taken: a drill done today of
last week's backup still means the newest data proven to restore is a week old.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stack_tui.core import backups
from stack_tui.core.errors import Refused

DEFAULTS = {
    "STACK_PROD_MAX_BACKUP_AGE": "26h",
    "STACK_PROD_MAX_DRILL_AGE": "8d",
    "STACK_DEV_MAX_BACKUP_AGE": "off",
    "STACK_DEV_MAX_DRILL_AGE": "off",
}
_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Limits:
    backup: float | None  # seconds; None: no limit
    drill: float | None


@dataclass(frozen=True)
class Stale:
    """One limit exceeded: `age` None means there is no such backup at all."""

    env: str
    what: str  # "backup" or "drill"
    age: float | None
    limit: float

    @property
    def key(self) -> str:
        return f"{self.env}:{self.what}"

    def message(self) -> str:
        thing = "good backup" if self.what == "backup" else "drilled backup"
        limit = duration_text(self.limit)
        if self.age is None:
            return f"{self.env}: no {thing} at all (limit {limit})"
        return f"{self.env}: newest {thing} is {duration_text(self.age)} old (limit {limit})"


def setting(values: Mapping[str, str], key: str) -> str:
    """The process environment wins over `.env`, as with Compose; else the default."""
    return os.environ.get(key) or values.get(key) or DEFAULTS.get(key, "")


def parse_duration(key: str, raw: str) -> float | None:
    text = raw.strip().lower()
    if text in ("off", "none", "0"):
        return None
    match = _DURATION.fullmatch(text)
    if not match or int(match.group(1)) == 0:
        raise Refused(
            f"{key}={raw!r} is not a duration.",
            f"Set {key} to a whole number with s, m, h or d (e.g. 26h, 8d), or off.",
        )
    return float(int(match.group(1)) * _UNITS[match.group(2)])


def limits(values: Mapping[str, str], env: str) -> Limits:
    """The env's limits; Refused naming the variable when one is malformed."""
    prefix = f"STACK_{env.upper()}_MAX_"
    return Limits(
        backup=parse_duration(prefix + "BACKUP_AGE", setting(values, prefix + "BACKUP_AGE")),
        drill=parse_duration(prefix + "DRILL_AGE", setting(values, prefix + "DRILL_AGE")),
    )


def default_limits(env: str) -> Limits:
    """The built-in limits, whatever is configured (when the configuration is malformed)."""
    prefix = f"STACK_{env.upper()}_MAX_"
    return Limits(
        backup=parse_duration("", DEFAULTS[prefix + "BACKUP_AGE"]),
        drill=parse_duration("", DEFAULTS[prefix + "DRILL_AGE"]),
    )


def evaluate(
    env: str, found: Sequence[backups.BackupInfo], limit: Limits, now: float | None = None
) -> list[Stale]:
    """The limits `env`'s backups (newest first) exceed; [] when all is well."""
    now = now or time.time()
    stale = []
    if limit.backup is not None:
        good = next((b for b in found if backups.counts_as_good(b)), None)
        age = None if good is None else good.age(now)
        if age is None or age > limit.backup:
            stale.append(Stale(env, "backup", age, limit.backup))
    if limit.drill is not None:
        drilled = next((b for b in found if b.drill is not None and b.drill.ok), None)
        age = None if drilled is None else drilled.age(now)
        if age is None or age > limit.drill:
            stale.append(Stale(env, "drill", age, limit.drill))
    return stale


def duration_text(seconds: float) -> str:
    """ "26h", "8d", "3d4h", "45m": exact enough for a limit, short enough for a status bar."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h"
    return f"{max(1, rest // 60)}m"
