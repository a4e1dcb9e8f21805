"""Services' logs: read in chunks from the engine, filtered, searched (CLI and TUI share it).

Why a spill file: dockerd 20.10 serves a json-file log at a few MB/s (100 MB takes it
15-20 s, every time it is asked), so a search that asked the engine again could never
answer within a second. A `LogSession` reads each service's log from the engine once, in
chunks, into a bounded spill (redacted, 0600, in a private directory removed on close);
searches, filters and "since" then scan that file (100 MB in about 0.5 s, docs/benchmarks.md)
while the screen holds only a bounded buffer of lines. The history (up to the moment the
session opened) and the live follow are read by separate threads, so new lines show at
once even while a large history is still being read.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import re
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from stack_tui.core import compose, dotenv, engine
from stack_tui.core.environments import Environment
from stack_tui.core.errors import Refused, StackError

diagnostics_log = logging.getLogger(__name__)

#: A normalised engine timestamp: RFC 3339, UTC, always 9 fractional digits, so that
#: timestamps sort as text (the engine trims trailing zeros: `.5Z` and `.123Z`).
STAMP_WIDTH = len("2026-12-01T10:00:00.000000000Z")
NO_STAMP = " " * STAMP_WIDTH
#: Lines a screen keeps (the spill has the rest).
VIEW_LINES = 5_000
#: A spill keeps at most this many bytes per service and part (history, live); the oldest
#: segment goes first. 2 x 512 MB per service at most, on disk, never in memory.
SPILL_LIMIT = 512 * 1024 * 1024
SEGMENT_BYTES = 32 * 1024 * 1024
#: Levels from the most severe; a level filter keeps that level and the more severe ones.
LEVELS = ("error", "warn", "info")
#: Only the head of a line is looked at for its level ("no error" in a message is no level).
LEVEL_HEAD = 100
SINCE_CHOICES = ("10m", "1h", "today")


class BadPattern(Refused):
    """A search or filter that is not a regular expression."""


class NoSuchService(Refused):
    """A service name the environment's compose files do not define, or one without a container."""


@dataclass(frozen=True)
class LogLine:
    service: str
    stamp: str  # see STAMP_WIDTH; NO_STAMP when the engine gave none
    text: str

    def shown(self, timestamps: bool) -> str:
        return f"{local_time(self.stamp)}  {self.text}" if timestamps else self.text


def normalise_stamp(stamp: str) -> str:
    """`2026-12-01T10:00:00.5Z` -> `2026-12-01T10:00:00.500000000Z`; anything else: NO_STAMP."""
    if len(stamp) < 20 or not stamp.endswith("Z") or stamp[19:20] not in (".", "Z"):
        return NO_STAMP
    fraction = stamp[20:-1] if stamp[19] == "." else ""
    return f"{stamp[:19]}.{fraction:0<9.9}Z"


def stamp_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def local_time(stamp: str) -> str:
    """A stamp as the operator's wall clock shows it (seconds), for display."""
    if stamp == NO_STAMP:
        return " " * 19
    moment = datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


_LEVEL_WORD = {
    **dict.fromkeys(("error", "err", "fatal", "panic", "critical", "crit", "alert", "emerg"), 0),
    **dict.fromkeys(("warn", "warning"), 1),
    **dict.fromkeys(("info", "notice", "log"), 2),
    "debug": 3,
    "trace": 3,
}
_LEVEL = re.compile(
    r"""(?:level|lvl|severity)["']?\s*[=:]\s*["']?(?P<key>[a-z]+)"""  # level=warn, "level":"info"
    r"|\[(?P<bracket>[a-z]+)\]"  # [error] (nginx, uvicorn)
    r"|\b(?P<word>ERROR|ERR|FATAL|PANIC|CRITICAL|CRIT|WARNING|WARN|INFO|NOTICE|LOG|DEBUG|TRACE)\b",
    re.IGNORECASE,
)


def level_of(text: str) -> int | None:
    """The line's severity (0 error, 1 warn, 2 info, 3 debug), or None when it carries none.
    Bare words count only in capitals (`ERROR:`, postgres' `LOG:`): `no error` is a message."""
    for found in _LEVEL.finditer(text, 0, LEVEL_HEAD):
        word = found.group("word")
        if word is not None and not word.isupper():
            continue
        name = (found.group("key") or found.group("bracket") or word).lower()
        if name in _LEVEL_WORD:
            return _LEVEL_WORD[name]
    return None


def compile_pattern(text: str) -> re.Pattern[str] | None:
    """The operator's search as a regular expression (None for an empty one); case-insensitive
    unless it has a capital letter, as ripgrep's smart case. Raises BadPattern, never re.error."""
    if not text:
        return None
    flags = 0 if any(c.isupper() for c in text) else re.IGNORECASE
    try:
        return re.compile(text, flags)
    except re.error as err:
        where = f" at position {err.pos}" if err.pos is not None else ""
        raise BadPattern(
            f"Not a regular expression: {err.msg}{where}.",  # the box or --grep shows it
            r"Fix it, or escape special characters with \ (e.g. \( or \.).",
        ) from None


_SINCE = re.compile(r"(?P<n>\d+)\s*(?P<unit>s|m|min|h|d)", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`10m`, `1h`, `2d`, `today` (local midnight) or a local date and time
    (`2026-12-01T10:00`, `2026-12-01 10:00`) as an aware datetime."""
    now = now or datetime.now().astimezone()
    text = text.strip()
    relative = _SINCE.fullmatch(text)
    if relative:
        return now - timedelta(seconds=int(relative["n"]) * _UNITS[relative["unit"].lower()])
    if text.lower() == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Refused(
            f"{text!r} is not a time to show logs since.",
            "Use 10m, 1h, 2d, today, or a local date and time such as 2026-12-01T10:00.",
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


#: Pattern parts whose meaning differs between text and bytes (Unicode letters, digits, spaces).
_UNICODE_SENSITIVE = re.compile(r"\\[wWsSdDbB]")


def _matching_lines(expression: re.Pattern[bytes], chunk: bytes) -> Iterator[int]:
    """Starts of the lines in which `expression` finds a match (searching on from each next
    line: a match that runs over a line end never hides a later line's match)."""
    position = 0
    while (found := expression.search(chunk, position)) is not None:
        yield chunk.rfind(b"\n", 0, found.start()) + 1
        end = chunk.find(b"\n", found.start())
        if end < 0:
            return
        position = end + 1


def _lines_with_words(words: list[bytes], chunk: bytes) -> Iterator[int]:
    """Starts of the lines holding any of `words` (one literal search each: a literal is
    found at C speed, an alternation of them is not)."""
    starts = {
        chunk.rfind(b"\n", 0, found.start()) + 1
        for word in words
        for found in re.finditer(re.escape(word), chunk)
    }
    return iter(sorted(starts))


@dataclass(frozen=True)
class LogFilter:
    """Which lines are kept: matching `pattern`, at `level` or more severe, not older than
    `since` (a normalised stamp). A line without a level is left out by a level filter."""

    pattern: re.Pattern[str] | None = None
    level: str | None = None
    since: str = ""

    def keeps(self, line: LogLine) -> bool:
        if self.since and line.stamp < self.since:
            return False
        if self.level is not None:
            found = level_of(line.text)
            if found is None or found > LEVELS.index(self.level):
                return False
        return self.pattern is None or self.pattern.search(line.text) is not None

    def candidates(self) -> Callable[[bytes], Iterator[int]] | None:
        """Where in a chunk of many lines (bytes) the lines that may be kept start: a superset
        found at C speed, so that only those lines are decoded and checked by `keeps`.
        None: every line must be checked (a pattern using Unicode classes such as \\w)."""
        if self.pattern is not None:
            source = self.pattern.pattern
            if not source.isascii() or _UNICODE_SENSITIVE.search(source):
                return None
            expression = re.compile(source.encode(), re.MULTILINE)
            folded = bool(self.pattern.flags & re.IGNORECASE)  # smart case: no capitals in it
            return lambda chunk: _matching_lines(expression, chunk.lower() if folded else chunk)
        if self.level is not None:
            words = [w.encode() for w, n in _LEVEL_WORD.items() if n <= LEVELS.index(self.level)]
            return lambda chunk: _lines_with_words(words, chunk.lower())
        return None

    @property
    def everything(self) -> bool:
        return self.pattern is None and self.level is None and not self.since


class LineSource(Protocol):
    """One service's log. Both calls return lines oldest first; `close()` on the returned
    stream ends it from another thread."""

    service: str

    def history(self, until: str) -> ClosableLines: ...

    def follow(self, since: str) -> ClosableLines: ...

    def tail(self, lines: int, until: str) -> ClosableLines: ...


class ClosableLines(Protocol):
    def batches(self) -> Iterator[list[LogLine]]:
        """Lines as they come: what the container wrote at once comes as one list."""
        ...

    def __iter__(self) -> Iterator[LogLine]: ...

    def close(self) -> None: ...


class EngineLines:
    """docker-py's chunked log stream (`timestamps=True`) as LogLines, secrets redacted.
    Memory stays at one chunk and one partial line whatever the log's size."""

    def __init__(self, stream: Any, service: str, secrets: list[str]) -> None:
        self._stream = stream
        self._service = service
        self._secrets = secrets
        self._closing = False

    def batches(self) -> Iterator[list[LogLine]]:
        pending = b""
        try:
            for chunk in self._stream:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                if complete:
                    yield [self._line(raw) for raw in complete]
        except Exception:  # closed by us: the stream ends; the engine went away: raised
            if not self._closing:
                raise
            return
        if pending:
            yield [self._line(pending)]

    def __iter__(self) -> Iterator[LogLine]:
        return itertools.chain.from_iterable(self.batches())

    def _line(self, raw: bytes) -> LogLine:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        stamp, _, rest = text.partition(" ")
        normalised = normalise_stamp(stamp)
        if normalised == NO_STAMP:
            rest = text
        return LogLine(self._service, normalised, dotenv.redact(rest, self._secrets))

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(Exception):
            self._stream.close()


@dataclass
class ContainerSource:
    """A service's container on the engine (docker-py), read with timestamps."""

    service: str
    container: Any
    secrets: list[str]

    def read(self, **options: Any) -> EngineLines:
        stream = engine.call(lambda: self.container.logs(stream=True, timestamps=True, **options))
        return EngineLines(stream, self.service, self.secrets)

    def history(self, until: str) -> EngineLines:
        return self.read(until=engine_time(until), follow=False)  # docker-py follows a stream

    def follow(self, since: str) -> EngineLines:
        return self.read(since=engine_time(since), follow=True)

    @property
    def state(self) -> str:
        """The container's state as the engine last reported it (running, exited, ...)."""
        return str(self.container.status)

    def tail(self, lines: int, until: str) -> EngineLines:
        return self.read(tail=lines, until=engine_time(until), follow=False)


def engine_time(stamp: str) -> float:
    """A normalised stamp as the seconds (with fraction) the engine's since/until take."""
    whole = datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return whole.timestamp() + int(stamp[20:29]) / 1e9


def service_sources(
    client: Any, project: str, services: Iterable[str], secrets: list[str]
) -> list[ContainerSource]:
    """A source per service; NoSuchService names one that has no container in `project`."""
    sources = []
    for service in services:
        container = engine.service_container(client, project, service)
        if container is None:
            raise NoSuchService(
                f"{service} has no container in {project}: it was never deployed or was removed.",
                "Deploy the environment first (./stack deploy, or d in the TUI).",
            )
        sources.append(ContainerSource(service, container, secrets))
    return sources


def secrets_of(env: Environment) -> list[str]:
    """The values redacted from the env's logs (none when .env cannot be read: then they
    cannot be known to be in the logs either)."""
    from stack_tui.core.prepared import prepare

    try:
        return list(prepare(env).secrets)
    except StackError:
        return []


def sources_for(
    env: Environment, services: list[str], *, skip_missing: bool = False
) -> list[ContainerSource]:
    """The services' containers in the env's own project, each name checked against the
    compose files first (a typo says which services there are). `skip_missing`: leave out
    services without a container (all of an env's logs), unless none has one."""
    known = compose.service_names(env)
    for service in services:
        check_service(service, known, env.project)
    client = engine.for_env(env)
    if skip_missing:
        present = [s for s in services if engine.service_container(client, env.project, s)]
        services = present or services[:1]  # none: the first one's error says so
    return service_sources(client, env.project, services, secrets_of(env))


def check_service(service: str, known: list[str], project: str) -> None:
    """Refuse a name the compose files do not define, saying which ones they do."""
    if service not in known:
        raise NoSuchService(
            f"{project} has no service {service!r}.",
            f"Its services: {', '.join(known)}.",
        )


def merged(streams: Iterable[Iterable[LogLine]]) -> Iterator[LogLine]:
    """Several services' lines interleaved by time (each stream is oldest first)."""
    return heapq.merge(*streams, key=lambda line: line.stamp)


# --- the spill: a bounded, private copy of what was read -----------------------------------


@dataclass
class Segment:
    """Lines as two files: their text (one per line, as the log had it) and their stamps
    (STAMP_WIDTH + 1 bytes each, line n at n * STAMP_RECORD), so that a search runs its regular
    expression over whole chunks of text and builds a line only where it matched."""

    text: Path
    stamps: Path
    lines: int = 0
    bytes: int = 0


STAMP_RECORD = STAMP_WIDTH + 1
#: Text read per step of a scan.
SCAN_CHUNK = 4 * 1024 * 1024


class SpillPart:
    """Append-only segments; the oldest segment is dropped past `limit` bytes. One writer
    thread; readers scan what was complete when they started."""

    def __init__(self, directory: Path, name: str, limit: int) -> None:
        self._directory = directory
        self._name = name
        self._limit = limit
        self._segments: deque[Segment] = deque()
        self._lock = threading.Lock()
        self._files: tuple[Any, Any] | None = None
        self._numbers = itertools.count()
        self.dropped = False
        self.bytes = 0

    def append(self, lines: list[LogLine]) -> None:
        text = "".join(f"{line.text}\n" for line in lines).encode()
        stamps = "".join(f"{line.stamp}\n" for line in lines).encode()
        with self._lock:
            if self._files is None or self._segments[-1].bytes >= SEGMENT_BYTES:
                self._next_segment()
            assert self._files is not None
            self._files[0].write(text)
            self._files[1].write(stamps)
            segment = self._segments[-1]
            segment.lines += len(lines)
            segment.bytes += len(text)
            self.bytes += len(text)
            while self.bytes > self._limit and len(self._segments) > 1:
                oldest = self._segments.popleft()
                self.bytes -= oldest.bytes
                oldest.text.unlink()
                oldest.stamps.unlink()
                self.dropped = True

    def _next_segment(self) -> None:
        self._close_files()
        number = next(self._numbers)
        segment = Segment(
            self._directory / f"{self._name}.{number:04d}.text",
            self._directory / f"{self._name}.{number:04d}.stamps",
        )
        files = (open(segment.text, "ab", buffering=0), open(segment.stamps, "ab", buffering=0))  # noqa: SIM115
        for path in (segment.text, segment.stamps):
            path.chmod(0o600)
        self._files = files
        self._segments.append(segment)

    def scan(self, service: str, keep: LogFilter) -> Iterator[LogLine]:
        """The lines `keep` keeps, oldest first. Files are opened up front: a segment dropped
        meanwhile stays readable while open."""
        with self._lock:
            opened = []
            for segment in self._segments:
                with contextlib.suppress(FileNotFoundError):
                    opened.append(
                        (segment.text.open("rb"), segment.stamps.open("rb"), segment.lines)
                    )
        candidates = keep.candidates()
        for text, stamps, lines in opened:
            with text, stamps:
                yield from _scan_segment(service, text, stamps, lines, keep, candidates)

    def tail(self, service: str, limit: int) -> list[LogLine]:
        """The newest `limit` lines, read from the end of the files (no filter: no scan)."""
        with self._lock:
            segments = [(s.text, s.stamps, s.lines, s.bytes) for s in self._segments]
        found: list[LogLine] = []
        for text, stamps, lines, size in reversed(segments):
            take = min(limit - len(found), lines)
            if take <= 0:
                break
            with (
                contextlib.suppress(FileNotFoundError),
                text.open("rb") as t,
                stamps.open("rb") as st,
            ):
                st.seek((lines - take) * STAMP_RECORD)
                stamp_text = st.read(take * STAMP_RECORD).decode("ascii", "replace")
                data, start = b"", size
                while data.count(b"\n") <= take and start > 0:
                    end, start = start, max(0, start - SCAN_CHUNK)
                    t.seek(start)
                    data = t.read(end - start) + data
                texts = data.split(b"\n")[:-1][-take:]
                found[:0] = [
                    LogLine(service, _stamp(stamp_text, n), raw.decode("utf-8", "replace"))
                    for n, raw in enumerate(texts)
                ]
        return found

    @property
    def lines(self) -> int:
        with self._lock:
            return sum(segment.lines for segment in self._segments)

    def close(self) -> None:
        with self._lock:
            self._close_files()

    def _close_files(self) -> None:
        if self._files is not None:
            for handle in self._files:
                handle.close()
            self._files = None


def _scan_segment(
    service: str,
    text: Any,
    stamps: Any,
    lines: int,
    keep: LogFilter,
    candidates: Callable[[bytes], Iterator[int]] | None,
) -> Iterator[LogLine]:
    """One segment's first `lines` lines, chunk by chunk. With `candidates` only the lines it
    finds in a chunk become LogLines; without (no pattern, no level) every line does."""
    first = 0  # index of the chunk's first line in the segment
    while first < lines:
        chunk = text.read(SCAN_CHUNK)
        if not chunk:
            return
        chunk += text.readline()  # whole lines only
        count = min(chunk.count(b"\n"), lines - first)
        stamps.seek(first * STAMP_RECORD)
        stamp_text = stamps.read(count * STAMP_RECORD).decode("ascii", "replace")
        first += count
        if keep.since and _stamp(stamp_text, count - 1) < keep.since:
            continue  # the whole chunk is older than `since`
        starts: Iterable[int] = (
            itertools.accumulate((len(piece) + 1 for piece in chunk.split(b"\n")[:-1]), initial=0)
            if candidates is None
            else candidates(chunk)
        )
        index, counted = 0, 0
        for start in starts:
            index += chunk.count(b"\n", counted, start)
            counted = start
            if index >= count:
                break
            end = chunk.find(b"\n", start)
            line = LogLine(
                service, _stamp(stamp_text, index), chunk[start:end].decode("utf-8", "replace")
            )
            if keep.keeps(line):
                yield line


def _stamp(stamps: str, index: int) -> str:
    return stamps[index * STAMP_RECORD : index * STAMP_RECORD + STAMP_WIDTH]


@dataclass
class ServiceLog:
    """What was read of one service: its history and its live part, each spilled."""

    source: LineSource
    history: SpillPart
    live: SpillPart
    history_done: bool = False
    error: str = ""

    def tail(self, limit: int) -> list[LogLine]:
        newest = self.live.tail(self.source.service, limit)
        older = self.history.tail(self.source.service, limit - len(newest))
        return older + newest

    def scan(self, keep: LogFilter) -> Iterator[LogLine]:
        service = self.source.service
        return itertools.chain(self.history.scan(service, keep), self.live.scan(service, keep))


@dataclass(frozen=True)
class SearchResult:
    lines: list[LogLine]  # the newest matching ones, at most `limit`
    matched: int
    scanned_bytes: int
    complete: bool  # False while a history is still being read, or when a spill dropped lines


@dataclass
class LogSession:
    """The logs of one or more services of an environment, read once into spills.

    `on_lines` gets each batch of new (live) lines from the follow threads, `on_change` is
    called when a history read finishes or fails; both from reader threads."""

    sources: Sequence[LineSource]
    on_lines: Callable[[list[LogLine]], None]
    on_change: Callable[[], None] = lambda: None
    started: str = field(default_factory=lambda: stamp_of(datetime.now(UTC)))
    limit: int = SPILL_LIMIT
    _directory: Path = field(init=False)
    _logs: list[ServiceLog] = field(init=False)
    _streams: list[ClosableLines] = field(init=False, default_factory=list)
    _closed: threading.Event = field(init=False, default_factory=threading.Event)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        remove_orphaned_spills()
        self._directory = Path(tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-"))  # 0700
        self._logs = [
            ServiceLog(
                source,
                SpillPart(self._directory, f"{n}-history", self.limit),
                SpillPart(self._directory, f"{n}-live", self.limit),
            )
            for n, source in enumerate(self.sources)
        ]

    def start(self) -> list[LogLine]:
        """Start reading; returns the newest lines up to now (the engine's tail: quick, while
        the whole history is read into the spill in the background)."""
        tails = []
        for source in self.sources:
            stream = self._open(partial(source.tail, VIEW_LINES, self.started))
            tails.append(list(stream) if stream is not None else [])
        for log in self._logs:
            for target in (self._read_history, self._follow):
                threading.Thread(
                    target=target, args=(log,), daemon=True, name="stack-tui-logs"
                ).start()
        return list(merged(tails))[-VIEW_LINES:]

    def _open(self, opener: Callable[[], ClosableLines]) -> ClosableLines | None:
        stream = opener()
        with self._lock:
            if self._closed.is_set():
                stream.close()
                return None
            self._streams.append(stream)
        return stream

    def _read_history(self, log: ServiceLog) -> None:
        try:
            stream = self._open(lambda: log.source.history(self.started))
            if stream is not None:
                for batch in _gathered(stream.batches()):
                    if self._closed.is_set():
                        return
                    log.history.append([line for line in batch if line.stamp < self.started])
        except StackError as err:
            log.error = err.message
        except Exception as err:  # the engine answered with an error, or a bug
            diagnostics_log.info("history of %s not read", log.source.service, exc_info=True)
            log.error = f"{log.source.service}: {err}"
        log.history_done = True
        self.on_change()

    def _follow(self, log: ServiceLog) -> None:
        try:
            stream = self._open(lambda: log.source.follow(self.started))
            if stream is None:
                return
            for batch in stream.batches():
                if self._closed.is_set():
                    return
                log.live.append(batch)
                self.on_lines(batch)
            if not self._closed.is_set():  # the container stopped: its log ends here
                log.error = f"{log.source.service} stopped: no more lines will come"
                self.on_change()
        except Exception as err:  # the engine went away (the screen says so), or a bug
            diagnostics_log.info("log follow of %s ended", log.source.service, exc_info=True)
            if not self._closed.is_set():
                log.error = getattr(err, "message", str(err))
                self.on_change()

    @property
    def reading(self) -> bool:
        """True while some history is still being read from the engine."""
        return not all(log.history_done for log in self._logs)

    @property
    def errors(self) -> list[str]:
        return [log.error for log in self._logs if log.error]

    @property
    def spilled_bytes(self) -> int:
        return sum(log.history.bytes + log.live.bytes for log in self._logs)

    def scan(self, keep: LogFilter) -> Iterator[LogLine]:
        """The lines read so far that `keep` keeps, services interleaved by time."""
        if len(self._logs) == 1:
            return self._logs[0].scan(keep)
        return merged(log.scan(keep) for log in self._logs)

    def search(self, keep: LogFilter, limit: int = VIEW_LINES) -> SearchResult:
        """The newest `limit` lines `keep` keeps, over everything read so far (streamed from
        the spill: memory is `limit` lines whatever the log's size)."""
        scanned = self.spilled_bytes
        dropped = any(log.history.dropped or log.live.dropped for log in self._logs)
        if keep.everything:  # no filter: the newest lines, read from the files' ends
            newest = [log.tail(limit) for log in self._logs]
            total = sum(log.history.lines + log.live.lines for log in self._logs)
            lines = list(merged(newest))[-limit:]
            return SearchResult(lines, total, scanned, not self.reading and not dropped)
        found: deque[LogLine] = deque(maxlen=limit)
        matched = 0
        for line in self.scan(keep):
            found.append(line)
            matched += 1
        return SearchResult(list(found), matched, scanned, not self.reading and not dropped)

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            streams, self._streams = self._streams, []
        for stream in streams:
            stream.close()
        for log in self._logs:
            log.history.close()
            log.live.close()
        shutil.rmtree(self._directory, ignore_errors=True)


SPILL_PREFIX = "stack-tui-logs-"


def remove_orphaned_spills(directory: Path | None = None) -> list[Path]:
    """Remove the spills of sessions whose process is gone (killed: it could not clean up)."""
    removed = []
    for spill in Path(directory or tempfile.gettempdir()).glob(f"{SPILL_PREFIX}*-*"):
        pid = spill.name.removeprefix(SPILL_PREFIX).split("-", 1)[0]
        mine = spill.stat().st_uid == os.getuid()
        if pid.isdigit() and mine and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(spill, ignore_errors=True)
            removed.append(spill)
    return removed


def _gathered(batches: Iterable[list[LogLine]], size: int = 5_000) -> Iterator[list[LogLine]]:
    """Small batches (the engine sends a history a few lines per chunk) gathered into bigger
    ones: one spill write per few thousand lines, not per chunk."""
    gathered: list[LogLine] = []
    for batch in batches:
        gathered += batch
        if len(gathered) >= size:
            yield gathered
            gathered = []
    if gathered:
        yield gathered
