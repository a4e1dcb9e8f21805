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


#: How much of a line is kept to judge it (a line can be megabytes: a COPY row, a
#: function body); the checks only need its start.
HEAD = 8192


class Scanner:
    """Feed a dump's SQL piece by piece; `rows` counts the data lines of each COPY block.

    Memory is bounded whatever the input: only the start of the current line
    and a few bytes around piece boundaries are kept. Ordinary statement lines
    are skipped by one regular-expression search per piece, COPY data by
    `bytes.find`; only notable lines are looked at one by one.
    """

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.line = 0  # lines ended so far
        self._copying: str | None = None
        self._head: bytes | None = None  # the current, unfinished statement line's start
        self._tail = b""  # statement text just before: FROM/TO PROGRAM across boundaries
        self._copy_tail = b"\n"  # the COPY data just before (a virtual newline at its start)

    def feed(self, piece: bytes) -> None:
        at = 0
        while at < len(piece):
            if self._copying is not None:
                at = self._copy_data(piece, at)
            elif self._head is not None:
                at = self._line_rest(piece, at)
            else:
                at = self._statements(piece, at)

    def finish(self) -> None:
        """The end of the SQL: a last line without a newline is judged too."""
        if self._head is not None and self._copying is None:
            self.line += 1
            self._judge(self._head)
        self._head = None

    def _copy_data(self, piece: bytes, at: int) -> int:
        """Count COPY rows up to the `\\.` line; return where statements resume."""
        assert self._copying is not None
        carry = self._copy_tail
        window = carry + piece[at:]
        found = window.find(b"\n" + COPY_END)
        if found < 0:
            rows = piece.count(b"\n", at)
            self.rows[self._copying] += rows
            self.line += rows
            self._copy_tail = window[-len(COPY_END) :]
            return len(piece)
        rows = window.count(b"\n", len(carry), found + 1)
        self.rows[self._copying] += rows
        self.line += rows + 1
        self._copying = None
        self._tail = b""
        return at + found + 1 + len(COPY_END) - len(carry)

    def _line_rest(self, piece: bytes, at: int) -> int:
        """More of an unfinished statement line."""
        assert self._head is not None
        end = piece.find(b"\n", at)
        stop = len(piece) if end < 0 else end + 1
        self._program_check(piece[at:stop])
        if len(self._head) < HEAD:
            self._head += piece[at : min(stop, at + HEAD - len(self._head))]
        if end < 0:
            return len(piece)
        head, self._head = self._head.rstrip(b"\n"), None
        self.line += 1
        self._judge(head)
        return end + 1

    def _statements(self, piece: bytes, at: int) -> int:
        """From a line start: skip ordinary lines with a few `find`s, judge the next notable
        one (the last, unfinished line of the piece is kept for the next piece)."""
        complete = piece.rfind(b"\n", at) + 1  # whole lines end here (0: none)
        if complete <= at:
            self._head = b""
            return self._line_rest(piece, at)
        segment = piece[at:complete]
        notable = _first_notable(segment)
        plain = segment if notable < 0 else segment[:notable]
        if plain:
            self._program_check(plain)
            self.line += plain.count(b"\n")
        resume = at + notable if notable >= 0 else complete
        if resume >= len(piece):
            return len(piece)
        self._head = b""
        return self._line_rest(piece, resume)

    def _program_check(self, text: bytes) -> None:
        joined = self._tail + text
        if b"program" in joined.lower():  # rare: the exact test only then
            found = PROGRAM.search(joined)
            if found:
                where = self.line + 1 + joined.count(b"\n", len(self._tail), found.end())
                raise UnsafeDump(
                    f"line {where} runs a program on the server (COPY ... PROGRAM)", _HINT
                )
        self._tail = joined[-CARRY:]

    def _judge(self, line: bytes) -> None:
        """A whole statement line (its first HEAD bytes): meta-commands, COPY, databases."""
        if line.startswith(b"\\"):
            if not line.startswith(ALLOWED_META):
                command = line.split(None, 1)[0].decode(errors="replace")
                raise UnsafeDump(
                    f"line {self.line} is the psql meta-command {command}, which pg_dump never "
                    "writes"
                    + (
                        " (it would switch the load to another database)"
                        if command in ("\\c", "\\connect")
                        else ""
                    ),
                    _HINT,
                )
        elif line[:5].upper() == b"COPY ":
            match = COPY_FROM_STDIN.fullmatch(line) or COPY_WITHOUT_COLUMNS.fullmatch(line)
            if match is None:
                raise UnsafeDump(
                    f"line {self.line} is a COPY that is not pg_dump's "
                    "'COPY table (columns) FROM stdin;'",
                    _HINT,
                )
            table = match.group(1).decode(errors="replace")
            self._copying = table
            self._copy_tail = b"\n"
            self.rows.setdefault(table, 0)
        elif DATABASE_STATEMENT.match(line.lstrip()):
            raise UnsafeDump(
                f"line {self.line} changes a database ({_words(line, 3)}): the dump "
                "was written with pg_dump --create, or edited",
                "Restore a dump written without --create (./stack backup writes "
                "one); nothing was changed.",
            )


def _first_notable(segment: bytes) -> int:
    """Where the first line worth a closer look starts in `segment` (whole lines, starting at
    a line start): a meta-command, a COPY, a database statement; -1 if none."""
    low = segment.lower()
    found = [0] if low.startswith((b"\\", b"copy ")) else []
    found += [i + 1 for i in (low.find(b"\n\\"), low.find(b"\ncopy ")) if i >= 0]
    at = low.find(b"database")
    while at >= 0 and (not found or at < min(found)):
        start = low.rfind(b"\n", 0, at) + 1
        if DATABASE_STATEMENT.match(segment[start:].lstrip()):
            found.append(start)
            break
        at = low.find(b"database", at + 1)
    return min(found) if found else -1


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


def loads_as_is(pieces: Iterable[bytes]) -> bool:
    """Whether the dump loads into an empty database unchanged (no bare --clean DROPs):
    then it can go to psql straight from gzip. Reads only the preamble."""
    head = b""
    for piece in pieces:
        head += piece
        if b"\n--\n-- Name: " in head or b"\nCOPY " in head or len(head) >= PREAMBLE_LIMIT:
            break
    return _skip_drops(head) == head


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
    boundary = next(
        (i for i, line in enumerate(lines) if line.startswith((b"-- Name: ", b"COPY "))), None
    )
    if boundary is None:
        return head
    out = []
    for line in lines[:boundary]:
        if DROP_SCHEMA.match(line):
            line = b"DROP SCHEMA IF EXISTS " + line[len(b"DROP SCHEMA ") :]
        elif DROP_LINE.match(line) and b" IF EXISTS " not in line:
            line = b"-- nothing to drop in a new database: " + line
        out.append(line)
    return b"\n".join(out + lines[boundary:])
