"""What is in a plain pg_dump file: refused content, rows per table, the --clean preamble.

A restore runs the dump through psql as the cluster's superuser, so the file is
code. The scanner refuses what pg_dump never writes and what would reach outside
the database being loaded: psql meta-commands other than `\\restrict` /
`\\unrestrict` (`\\!` runs a shell, `\\copy ... program` too, `\\connect` would
switch the load to another database), `COPY` in any form but pg_dump's
`COPY table (columns) FROM stdin;` (`COPY ... PROGRAM` runs a shell on the
server, `COPY ... FROM '/file'` reads its files), and statements on databases
(`CREATE/ALTER/DROP DATABASE`, written by `pg_dump --create`). It is a filter
for dumps that are not what they claim, not a sandbox: restore only backups you
trust.

COPY data is skipped with `bytes.find`, never split into lines, so a scan costs
little next to inflating the file; its rows are counted on the way (a row is a
line of a COPY block), which the restore checks against the loaded tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from stack_tui.core.errors import Refused

ALLOWED_META = (b"\\restrict ", b"\\unrestrict ")
#: A table as pg_dump names it: identifiers unquoted only when lower-case ASCII, digits and `_`.
TABLE = rb'((?:[a-z0-9_.]+|"(?:[^"]|"")+")+)'
COPY_FROM_STDIN = re.compile(rb"COPY " + TABLE + rb" \(.*\) FROM stdin;")
COPY_WITHOUT_COLUMNS = re.compile(rb"COPY " + TABLE + rb" FROM stdin;")
PROGRAM = re.compile(rb"\b(FROM|TO)\s+PROGRAM\b", re.IGNORECASE)
DATABASE_STATEMENT = re.compile(rb"(CREATE|ALTER|DROP)\s+DATABASE\b", re.IGNORECASE)
COPY_END = b"\\.\n"
#: What the end of one line may carry over to the next when looking for `FROM PROGRAM`.
CARRY = 64


class UnsafeDump(Refused):
    """The dump holds something pg_dump never writes; it is not run."""


class Scanner:
    """Feed a dump's SQL piece by piece; `rows` counts the data lines of each COPY block."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.line = 0
        self._pending = b""
        self._copying: str | None = None
        self._previous_tail = b""

    def feed(self, piece: bytes) -> None:
        data = self._pending + piece
        start = 0
        while start < len(data):
            if self._copying is not None:
                start = self._skip_copy(data, start)
                if self._copying is not None:
                    break
                continue
            end = data.find(b"\n", start)
            if end < 0:
                break
            self.line += 1
            self._statement_line(data[start:end])
            start = end + 1
        self._pending = data[start:]

    def finish(self) -> None:
        """The end of the SQL: a last line without a newline is checked too."""
        if self._pending and self._copying is None:
            self.line += 1
            self._statement_line(self._pending)
        self._pending = b""

    def _skip_copy(self, data: bytes, start: int) -> int:
        """Consume COPY data from `start` (a line start); return where statements resume."""
        assert self._copying is not None
        at = start if data.startswith(COPY_END, start) else data.find(b"\n" + COPY_END, start)
        if at < 0:
            last = data.rfind(b"\n", start)
            if last < 0:
                return start  # an incomplete line: wait for more
            lines = data.count(b"\n", start, last + 1)
            self.rows[self._copying] += lines
            self.line += lines
            return last + 1
        if at != start:
            at += 1  # past the newline that ends the last row
        lines = data.count(b"\n", start, at)
        self.rows[self._copying] += lines
        self.line += lines + 1
        self._copying = None
        return at + len(COPY_END)

    def _statement_line(self, line: bytes) -> None:
        if line.startswith(b"\\"):
            if not line.startswith(ALLOWED_META):
                command = line.split(None, 1)[0].decode(errors="replace")
                raise UnsafeDump(
                    f"line {self.line} is the psql meta-command {command}, which pg_dump never "
                    "writes" + (" (it would switch the load to another database)"
                                if command in ("\\c", "\\connect") else ""),
                    _HINT)
        elif line.startswith(b"COPY "):
            match = COPY_FROM_STDIN.fullmatch(line) or COPY_WITHOUT_COLUMNS.fullmatch(line)
            if match is None:
                raise UnsafeDump(f"line {self.line} is a COPY that is not pg_dump's "
                                 "'COPY table (columns) FROM stdin;'", _HINT)
            table = match.group(1).decode(errors="replace")
            self._copying = table
            self.rows.setdefault(table, 0)
        elif DATABASE_STATEMENT.match(line.lstrip()):
            raise UnsafeDump(f"line {self.line} changes a database ({_words(line, 3)}): the dump "
                             "was written with pg_dump --create, or edited",
                             "Restore a dump written without --create (./stack backup writes "
                             "one); nothing was changed.")
        joined = self._previous_tail + b" " + line
        if PROGRAM.search(joined):
            raise UnsafeDump(f"line {self.line} runs a program on the server (COPY ... PROGRAM)",
                             _HINT)
        self._previous_tail = line[-CARRY:]


_HINT = "It was not written by pg_dump, or was changed since: nothing was run. Pick another backup."


def _words(line: bytes, count: int) -> str:
    return " ".join(line.decode(errors="replace").split()[:count])


def scan(pieces: Iterable[bytes]) -> Scanner:
    """Scan a whole dump; raises UnsafeDump at the first refused line."""
    scanner = Scanner()
    for piece in pieces:
        scanner.feed(piece)
    scanner.finish()
    return scanner


# --- loading into an empty database --------------------------------------------------------------

#: pg_dump --clean writes its DROP statements (and ALTER ... DROP CONSTRAINT / DROP DEFAULT /
#: DETACH PARTITION) before the first object.
DROP_LINE = re.compile(rb"(DROP|ALTER) ")
DROP_SCHEMA = re.compile(rb"DROP SCHEMA (?!IF EXISTS )")
PREAMBLE_LIMIT = 1 << 20


def for_empty_database(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The dump as psql should load it into a new, empty database.

    A dump written with --clean but without --if-exists starts by dropping every
    object it is about to create; in an empty database each DROP fails (and
    psql's `\\restrict` mode forbids turning ON_ERROR_STOP off around them). So
    in that preamble, and only there, a DROP SCHEMA gets IF EXISTS (the public
    schema exists in a new database; dumps of PostgreSQL before 15 drop and
    recreate it) and every other DROP becomes a comment: there is nothing to
    drop. Everything after the preamble is passed through untouched.
    """
    iterator = iter(pieces)
    head = b""
    for piece in iterator:
        head += piece
        if b"\n--\n-- Name: " in head or b"\nCOPY " in head or len(head) >= PREAMBLE_LIMIT:
            break
    yield _skip_drops(head)
    yield from iterator


def _skip_drops(head: bytes) -> bytes:
    """`head` with its preamble's DROPs neutralised; unchanged when it holds no first object
    (the boundary that proves where the preamble ends)."""
    lines = head.split(b"\n")
    boundary = next((i for i, line in enumerate(lines)
                     if line.startswith((b"-- Name: ", b"COPY "))), None)
    if boundary is None:
        return head
    out = []
    for line in lines[:boundary]:
        if DROP_SCHEMA.match(line):
            line = b"DROP SCHEMA IF EXISTS " + line[len(b"DROP SCHEMA "):]
        elif DROP_LINE.match(line) and b" IF EXISTS " not in line:
            line = b"-- nothing to drop in a new database: " + line
        out.append(line)
    return b"\n".join(out + lines[boundary:])
