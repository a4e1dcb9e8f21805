"""The databases a restore leaves in a cluster, and what to do when one was interrupted.

A restore loads into `{db}__restoring` while the application keeps serving from
`{db}`, then swaps the two names in ONE transaction (PostgreSQL renames
databases transactionally): `{db}` becomes `{db}__before_{stamp}`, the safety
copy, and `{db}__restoring` becomes `{db}`. So no crash can leave the
environment without its database; what one can leave is

- a `{db}__restoring` beside `{db}`: a load that did not finish (dropped);
- `{db}` refusing connections: the switch-over had blocked them (allowed again);
- services stopped by the switch-over, recorded in a journal file next to the
  environment's lock (started again);
- `{db}` missing beside a `{db}__before_*` copy: only by hand, never by us
  (`./stack backup undo-restore` puts the newest copy back).

This module names those databases and reads their state; it decides nothing.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from stack_tui.core import pg
from stack_tui.core.errors import Refused

LOADING_SUFFIX = "__restoring"
BEFORE_INFIX = "__before_"
STAMP_FORMAT = "%Y%m%d_%H%M%S"
DEFAULT_KEEP_BEFORE = 1
KEEP_BEFORE_VARIABLE = "STACK_RESTORE_KEEP_BEFORE"


def loading_name(database: str) -> str:
    return database + LOADING_SUFFIX


def before_name(database: str, when: datetime) -> str:
    return f"{database}{BEFORE_INFIX}{when.strftime(STAMP_FORMAT)}"


@dataclass(frozen=True)
class Copy:
    """A `{db}__before_{stamp}` database: the state just before a restore (or an undo)."""

    name: str
    taken: datetime
    size: int


@dataclass(frozen=True)
class DatabaseState:
    database: str
    live: bool = True  # `{db}` exists
    accepting: bool = True  # `{db}` allows connections
    loading: bool = False  # a `{db}__restoring` exists
    copies: tuple[Copy, ...] = ()  # newest first
    live_size: int = 0
    journal: tuple[str, ...] = field(default=())  # services a died switch-over stopped

    @property
    def problems(self) -> list[str]:
        """What an interrupted restore left, for status, check and the TUI."""
        found = []
        if not self.live:
            kept = f" ({self.copies[0].name} is the newest copy)" if self.copies else ""
            found.append(f"database {self.database} is missing{kept}")
        if self.loading:
            found.append(f"{loading_name(self.database)} was left by an interrupted restore")
        if self.live and not self.accepting:
            found.append(f"{self.database} refuses connections (an interrupted switch-over)")
        if self.journal:
            found.append(f"{', '.join(self.journal)} stopped by an interrupted switch-over")
        return found


_COPY = re.compile(r"(.+)__before_(\d{8}_\d{6})")


def read_state(db: pg.Session, database: str, journal: Path | None = None) -> DatabaseState:
    """The live database, a leftover load and the safety copies, from pg_database."""
    like = pg.literal(database.replace("_", "\\_") + "\\_\\_%")
    rows = db.rows(
        "SELECT datname, datallowconn, pg_database_size(oid) FROM pg_database "
        f"WHERE datname = {pg.literal(database)} OR datname LIKE {like}"
    )
    live = accepting = loading = False
    live_size = 0
    copies = []
    for name, allowed, size in rows:
        if name == database:
            live, accepting, live_size = True, allowed == "t", int(size)
        elif name == loading_name(database):
            loading = True
        else:
            match = _COPY.fullmatch(name)
            if match and match.group(1) == database:
                try:
                    taken = datetime.strptime(match.group(2), STAMP_FORMAT)
                except ValueError:
                    continue
                copies.append(Copy(name, taken, int(size)))
    copies.sort(key=lambda c: c.taken, reverse=True)
    services = read_journal(journal) if journal else ()
    return DatabaseState(database, live, accepting, loading, tuple(copies), live_size, services)


# --- the journal of a switch-over in progress ----------------------------------------------------


def journal_path(locks_dir: Path, project: str) -> Path:
    return locks_dir / f"{project}.switchover.json"


def write_journal(path: Path, services: list[str]) -> None:
    """Record which services the switch-over stops, durably, before stopping them."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"services": services, "pid": os.getpid()}, out)
        out.flush()
        os.fsync(out.fileno())


def read_journal(path: Path) -> tuple[str, ...]:
    try:
        services = json.loads(path.read_text()).get("services", [])
    except (OSError, ValueError, AttributeError):
        return ()
    return tuple(str(s) for s in services if isinstance(s, str))


def keep_before_setting(environ: dict[str, str] | None = None) -> int:
    """How many safety copies per environment to keep ($STACK_RESTORE_KEEP_BEFORE, default 1)."""
    raw = (os.environ if environ is None else environ).get(KEEP_BEFORE_VARIABLE, "")
    if not raw:
        return DEFAULT_KEEP_BEFORE
    if not raw.isdigit() or int(raw) < 1:
        raise Refused(
            f"{KEEP_BEFORE_VARIABLE}={raw!r} is not a positive whole number.",
            "Set it to how many pre-restore databases to keep, e.g. 1.",
        )
    return int(raw)
