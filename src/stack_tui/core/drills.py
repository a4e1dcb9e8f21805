"""Restore drills: what a dump promises, and what a drill found, kept beside the backup.

A checksum proves a file is intact, not that it restores. A drill loads the
backup into a throwaway PostgreSQL (ops/drill.py) and compares the result with
what the dump itself carries: `DumpCounter` reads the SQL as it streams past
(bounded memory), counting the rows of every `COPY ... FROM stdin;` block and
collecting the schema objects named in pg_dump's table-of-contents comments.

The outcome is a `DrillRecord` in a sidecar file `{backup}.drill.json` (0600),
written atomically, so `backup list`, `status`, the TUI and retention can all
read it without running anything.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SIDECAR_SUFFIX = ".drill.json"
#: The rows each table had when the backup was taken, counted as pg_dump streamed.
MANIFEST_SUFFIX = ".rows.json"

#: `_write_json`'s temporary file for a backup's sidecar: `.{backup}{suffix}.{pid}.partial`
_TEMPORARY = re.compile(
    rf"\.(?P<backup>.+?)(?:{re.escape(SIDECAR_SUFFIX)}|{re.escape(MANIFEST_SUFFIX)})"
    r"\.(?P<pid>[0-9]+)\.partial"
)
#: pg_dump's COPY header line: `COPY public.accounts (aid, bid) FROM stdin;`
_COPY_HEADER = re.compile(rb"^COPY (.+?) (?:\(.*\) )?FROM stdin;\n", re.MULTILINE)
#: pg_dump's table of contents, one comment per object:
#: `-- Name: accounts; Type: TABLE; Schema: public; Owner: agent`
_TOC = re.compile(rb"^-- Name: (.*?); Type: (.*?); Schema: (.*?);", re.MULTILINE)
_END_OF_DATA = b"\\.\n"

#: Object types the drill checks in the loaded database (pg_catalog can answer for these).
CHECKED_TYPES = frozenset(
    {
        "SCHEMA",
        "TABLE",
        "VIEW",
        "MATERIALIZED VIEW",
        "SEQUENCE",
        "INDEX",
        "FUNCTION",
        "CONSTRAINT",
        "FK CONSTRAINT",
        "TYPE",
    }
)


@dataclass(frozen=True)
class SchemaObject:
    kind: str  # pg_dump's TOC type: TABLE, INDEX, CONSTRAINT, ...
    schema: str  # "-" when pg_dump writes none (schemas themselves)
    name: str  # for a constraint: "table constraint"; for a function: "name(args)"

    def label(self) -> str:
        where = f"{self.schema}." if self.schema not in ("", "-") else ""
        return f"{self.kind.lower()} {where}{self.name}"


class DumpCounter:
    """Counts the rows in each COPY block and collects the TOC, fed the SQL in pieces.

    Only whole lines are parsed; the unfinished last line of a piece is carried
    to the next one. Inside a COPY block every line is a row (COPY's text format
    escapes newlines in data), so rows are counted with `bytes.count`, at C speed.
    """

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.objects: list[SchemaObject] = []
        self._table: str | None = None  # inside this table's COPY block
        self._carry = b""

    def feed(self, piece: bytes) -> None:
        data = self._carry + piece if self._carry else piece
        end = data.rfind(b"\n") + 1
        self._carry = data[end:]
        position = 0
        while position < end:
            if self._table is not None:
                position = self._copy_data(data, position, end)
            else:
                position = self._statements(data, position, end)

    def _copy_data(self, data: bytes, position: int, end: int) -> int:
        assert self._table is not None
        if data.startswith(_END_OF_DATA, position):
            stop = position
        else:
            found = data.find(b"\n" + _END_OF_DATA, position, end)
            stop = -1 if found < 0 else found + 1
        if stop < 0:
            self.rows[self._table] += data.count(b"\n", position, end)
            return end
        self.rows[self._table] += data.count(b"\n", position, stop)
        self._table = None
        return stop + len(_END_OF_DATA)

    def _statements(self, data: bytes, position: int, end: int) -> int:
        header = _COPY_HEADER.search(data, position, end)
        stop = header.start() if header else end
        for toc in _TOC.finditer(data, position, stop):
            name, kind, schema = (part.decode(errors="replace") for part in toc.groups())
            self.objects.append(SchemaObject(kind, schema, name))
        if header is None:
            return end
        self._table = header.group(1).decode(errors="replace")
        self.rows.setdefault(self._table, 0)
        return header.end()

    @property
    def checked_objects(self) -> list[SchemaObject]:
        return [o for o in self.objects if o.kind in CHECKED_TYPES]


@dataclass(frozen=True)
class DrillRecord:
    """What one drill of one backup found."""

    ok: bool
    reason: str  # why it failed, for a person; "" when ok
    at: float  # when the drill ended (epoch seconds)
    seconds: float  # time to restore: the load, from the first byte to the last check
    total_seconds: float = 0.0  # including the throwaway server's start and removal
    image: str = ""
    tables: int = 0
    rows: int = 0
    objects: int = 0  # schema objects checked
    mismatches: list[str] = field(default_factory=list)  # "public.t: dump 10 rows, loaded 9"
    missing: list[str] = field(default_factory=list)  # schema objects not found after the load

    def summary(self, now: float | None = None) -> str:
        """ "drilled ok 2h ago, 41 s" or "drill FAILED 2h ago: <reason>"."""
        ago = _ago((now or time.time()) - self.at)
        if self.ok:
            return f"drilled ok {ago} ago, {_seconds(self.seconds)}"
        return f"drill FAILED {ago} ago: {self.reason}"

    def short(self) -> str:
        """For a table cell: "ok 41 s" or "FAILED"."""
        return f"ok {_seconds(self.seconds)}" if self.ok else "FAILED"


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return "<1m"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def sidecar(backup: Path) -> Path:
    return backup.with_name(backup.name + SIDECAR_SUFFIX)


def read(backup: Path) -> DrillRecord | None:
    """The last drill of `backup`, or None (never drilled, or an unreadable sidecar)."""
    try:
        raw: dict[str, Any] = json.loads(sidecar(backup).read_text())
        return DrillRecord(**raw)
    except (OSError, ValueError, TypeError):
        return None


def write(backup: Path, record: DrillRecord) -> Path:
    """Store `record` beside `backup`."""
    return _write_json(sidecar(backup), asdict(record))


def manifest(backup: Path) -> Path:
    return backup.with_name(backup.name + MANIFEST_SUFFIX)


def write_manifest(backup: Path, rows: dict[str, int]) -> Path:
    """Record the rows per table a backup was written with: a file changed since (a row
    lost, a block cut) is caught by the drill even where gzip and the trailer look right."""
    return _write_json(manifest(backup), {"rows": rows})


def read_manifest(backup: Path) -> dict[str, int] | None:
    """The rows per table recorded when `backup` was taken; None for older backups."""
    try:
        rows = json.loads(manifest(backup).read_text())["rows"]
        return {str(name): int(count) for name, count in rows.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def temporary_of(name: str) -> tuple[str, int] | None:
    """(backup name, writer's pid) for a drill record's or manifest's temporary file (as
    `_write_json` names it); None for any other name."""
    match = _TEMPORARY.fullmatch(name)
    return None if match is None else (match["backup"], int(match["pid"]))


def _write_json(target: Path, content: dict[str, Any]) -> Path:
    """Written under a temporary name, 0600, fsynced, then renamed over the target."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as sink:
            os.fchmod(sink.fileno(), 0o600)
            json.dump(content, sink)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def forget(backup: Path) -> None:
    """Remove a backup's drill record and manifest (when the backup itself is pruned)."""
    sidecar(backup).unlink(missing_ok=True)
    manifest(backup).unlink(missing_ok=True)


def failed(backup: Path) -> bool:
    """Whether `backup`'s last drill failed: such a backup never counts as a good one."""
    record = read(backup)
    return record is not None and not record.ok
