"""Backup files: names, listing, verification and retention.

A backup is `{env}_{YYYYMMDD_HHMMSS}.sql.gz` in `data/backups/`. Nothing
else ever carries such a name: a dump is written under a temporary name
(`.{name}.partial`), verified, then renamed. Files are 0600, the directory 0700.

Verification reads the whole file with bounded memory: the gzip stream must be
intact (CRC and length checked at the end of each member, by isal's GzipFile: the
standard library's API and checks, with ISA-L's inflate at about three times zlib's
speed, which is what an off-host copy and a restore wait for) and the SQL
must end with pg_dump's `-- PostgreSQL database dump complete` trailer, which a
dump killed half-way lacks even when its gzip stream is well formed.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, cast

from stack_tui.core import drills
from stack_tui.core.errors import Refused

NAME_PATTERN = re.compile(r"(dev|prod)_(\d{8}_\d{6})\.sql\.gz")
TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"
TRAILER = b"-- PostgreSQL database dump complete"
DEFAULT_KEEP = 5

GZIP_MAGIC = b"\x1f\x8b"
GZIP_WBITS = 31  # zlib: a gzip header and trailer around the deflate stream (backup.py)
#: The most a single inflate step may produce: a tiny, highly compressed input
#: must not expand into memory all at once. Small pieces also keep a restore
#: streaming: psql drains the pipe while the next piece is inflated.
INFLATE_LIMIT = 256 << 10
#: How much of the end of the SQL is kept to look for the trailer. pg_dump
#: writes at most a `\unrestrict` line and comments after it.
TAIL_SIZE = 64 << 10


class InvalidBackup(Refused):
    """A file that must not be restored: not gzip, damaged, truncated or incomplete."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    env: str
    taken: datetime
    size: int
    verified: bool | None = None  # None: not checked (listing stays cheap)
    drill: drills.DrillRecord | None = None  # the last restore drill, None if never drilled

    @property
    def name(self) -> str:
        return self.path.name

    def age(self, now: float | None = None) -> float:
        return (now or time.time()) - self.taken.timestamp()


@dataclass(frozen=True)
class Verification:
    ok: bool
    reason: str  # why not, for a person; "" when ok
    sql_bytes: int = 0  # uncompressed size of what was read
    rows: tuple[tuple[str, int], ...] = ()  # (table, rows in its COPY block), when ok


def backup_name(env: str, when: datetime) -> str:
    return f"{env}_{when.strftime(TIMESTAMP_FORMAT)}.sql.gz"


def partial_name(name: str) -> str:
    """The hidden name a backup is written under until it is verified."""
    return f".{name}.partial"


def parse_name(name: str) -> tuple[str, datetime] | None:
    """(env, time) for a backup's file name; None for any other name."""
    match = NAME_PATTERN.fullmatch(name)  # `$` alone would accept a trailing newline
    if not match:
        return None
    try:
        # TIMESTAMP_FORMAT is ISO 8601's basic form with "_" for "T": fromisoformat reads
        # it without importing _strptime (a launch reads every backup's name)
        return match.group(1), datetime.fromisoformat(match.group(2).replace("_", "T"))
    except ValueError:
        return None


def list_backups(directory: Path, env: str | None = None) -> list[BackupInfo]:
    """Backups in `directory` (of one env, or all), newest first.

    Only regular files count: a symlink or a directory under a backup's name was
    not written by us, so it is neither listed nor ever pruned.
    """
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
            st = entry.lstat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        found.append(BackupInfo(entry, parsed[0], parsed[1], st.st_size, drill=drills.read(entry)))
    return sorted(found, key=lambda b: (b.taken, b.name), reverse=True)


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def ensure_private_dir(directory: Path) -> Path:
    """Create the backups directory 0700, or narrow an existing one to 0700 (whatever the umask)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(directory.stat().st_mode) != 0o700:
        directory.chmod(0o700)
    return directory


# --- verification -----------------------------------------------------------------------------


def dump_complete(tail: bytes) -> bool:
    """Whether SQL ending in `tail` ends with pg_dump's trailer line.

    Recent pg_dump writes `\\unrestrict KEY` after the trailer, so the trailer is
    searched for; after it only blank lines, comments and `\\unrestrict` may follow.
    The trailer must be a line of its own: text in a row cannot fake it, as COPY
    escapes newlines in data.
    """
    at = tail.rfind(TRAILER)
    if at < 0 or (at > 0 and tail[at - 1 : at] != b"\n"):
        return False
    rest = tail[at + len(TRAILER) :]
    if rest and not rest.startswith(b"\n"):
        return False
    return all(
        not line.strip() or line.startswith((b"--", b"\\unrestrict ")) for line in rest.split(b"\n")
    )


def inflate(source: BinaryIO, piece_size: int = INFLATE_LIMIT) -> Iterator[bytes]:
    """The SQL in a gzip file (`source` seekable), in pieces of at most `piece_size` bytes.

    GzipFile (isal's, as the standard library's) checks each member's CRC and length
    and reads `cat a.gz b.gz` as one stream. Raises InvalidBackup when the file is empty, not
    gzip, damaged or truncated, or when the SQL lacks the dump-complete trailer. The
    check of the trailer comes after the last piece, so a consumer must not treat the
    data as complete until the iterator is exhausted without an exception.
    """
    head = source.read(len(GZIP_MAGIC))
    if not head:
        raise InvalidBackup("the file is empty")
    if head != GZIP_MAGIC:
        raise InvalidBackup("not a gzip file")
    source.seek(-len(head), os.SEEK_CUR)
    from isal import igzip, isal_zlib  # a status read lists backups without inflating one

    tail = b""
    # isal's stubs: the constructor is unannotated, `error` typed as an instance
    damaged = (igzip.BadGzipFile, cast(type[Exception], isal_zlib.error))
    with igzip.IGzipFile(fileobj=source, mode="rb") as sql:  # type: ignore[no-untyped-call]
        while True:
            try:
                piece = sql.read(piece_size)  # at most that much in memory at once
            except EOFError:
                raise InvalidBackup("the gzip data is truncated (or ends in stray bytes)") from None
            except damaged as err:
                raise InvalidBackup(f"damaged gzip data ({err})") from None
            if not piece:
                break
            tail = piece[-TAIL_SIZE:] if len(piece) >= TAIL_SIZE else (tail + piece)[-TAIL_SIZE:]
            yield piece
    if not dump_complete(tail):
        raise InvalidBackup(
            "the dump is incomplete: the '-- PostgreSQL database dump complete' trailer is missing"
        )


def verify_stream(source: BinaryIO) -> Verification:
    """Read `source` to its end through `inflate`, with constant memory; its SQL must hold
    nothing pg_dump never writes (core.dumpscan, imported here: listing backups for a status
    read does not need it)."""
    from stack_tui.core import dumpscan

    size = 0
    scanner = dumpscan.Scanner()
    try:
        for piece in inflate(source):
            size += len(piece)
            scanner.feed(piece)
        scanner.finish()
    except (InvalidBackup, dumpscan.UnsafeDump) as err:
        return Verification(False, err.message, size)
    except OSError as err:
        return Verification(False, f"cannot read it ({err.strerror or err})", size)
    return Verification(True, "", size, tuple(scanner.rows.items()))


def verify(path: Path) -> Verification:
    """Whether `path` is a restorable backup: intact gzip and a complete dump."""
    try:
        with path.open("rb") as source:
            return verify_stream(source)
    except OSError as err:
        return Verification(False, f"cannot open it ({err.strerror or err})")


_verified: dict[tuple[str, int, int, int], Verification] = {}


def verify_cached(path: Path) -> Verification:
    """`verify`, remembered per (path, inode, size, mtime) so repeated listings stay cheap."""
    try:
        st = path.stat()
    except OSError as err:
        return Verification(False, f"cannot open it ({err.strerror or err})")
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _verified:
        _verified[key] = verify(path)
    return _verified[key]


def remember_verified(path: Path, verification: Verification) -> None:
    """Record the verification of a file just written, so it is not read again to list it."""
    st = path.stat()
    _verified[(str(path), st.st_ino, st.st_size, st.st_mtime_ns)] = verification


# --- retention --------------------------------------------------------------------------------


#: A name dated more than this into the future is not trusted as the newest backup.
FUTURE_SLACK = 300


def future_dated(info: BackupInfo, now: float | None = None) -> bool:
    """Named after a time still to come (a wrong clock, a copied file): reported by check,
    never counted as the newest backup, never pruned."""
    return info.taken.timestamp() > (time.time() if now is None else now) + FUTURE_SLACK


def counts_as_good(info: BackupInfo) -> bool:
    """Not known to be bad: its verification did not fail, nor did its last restore drill."""
    return info.verified is not False and not (info.drill is not None and not info.drill.ok)


def plan_prune(
    backups: Iterable[BackupInfo],
    keep: int,
    *,
    now: float | None = None,
    protected: Iterable[Path] = (),
) -> list[BackupInfo]:
    """The backups to delete so each env keeps its newest `keep` good ones.

    Good means `counts_as_good` (not failed verification or drill). Everything older
    than the `keep`-th newest good backup goes; nothing goes while an env has
    `keep` good backups or fewer, so the newest good backup is never deleted.
    Never returned: a file whose name is not a backup name, a `protected` path
    (the backup just written), and future-dated files, which also never count.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    spared = set(protected)
    by_env: dict[str, list[BackupInfo]] = {}
    for info in backups:
        parsed = parse_name(info.path.name)
        if parsed is not None and parsed[0] == info.env and not future_dated(info, now):
            by_env.setdefault(info.env, []).append(info)
    doomed: list[BackupInfo] = []
    for infos in by_env.values():
        infos.sort(key=lambda b: (b.taken, b.name), reverse=True)
        good = [b for b in infos if counts_as_good(b)]
        if len(good) <= keep:
            continue
        oldest_kept = (good[keep - 1].taken, good[keep - 1].name)
        doomed += [b for b in infos if (b.taken, b.name) < oldest_kept and b.path not in spared]
    return doomed


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def keep_setting() -> int:
    """How many backups per environment to keep: $STACK_BACKUP_KEEP, else DEFAULT_KEEP.
    A bad value refuses rather than silently pruning to the default."""
    raw = os.environ.get("STACK_BACKUP_KEEP", "")
    if not raw:
        return DEFAULT_KEEP
    if not raw.isdigit() or int(raw) < 1:
        raise Refused(
            f"STACK_BACKUP_KEEP={raw!r} is not a positive whole number.",
            "Set it to how many backups to keep per environment, e.g. 5.",
        )
    return int(raw)
