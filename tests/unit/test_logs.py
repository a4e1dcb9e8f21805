"""core/logs.py's pure parts: stamps, levels, patterns, since, and that the spill's fast
candidate scan keeps exactly the lines a line-by-line check keeps."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stack_tui.core import logs
from stack_tui.core.errors import StackError
from stack_tui.core.logs import LogFilter, LogLine, SpillPart


def test_stamps_normalised_so_that_they_sort_as_text() -> None:
    short, long = "2026-12-01T10:00:00.5Z", "2026-12-01T10:00:00.123Z"
    assert logs.normalise_stamp(short) == "2026-12-01T10:00:00.500000000Z"
    assert logs.normalise_stamp(long) > logs.normalise_stamp("2026-12-01T10:00:00.12Z")
    assert logs.normalise_stamp(short) > logs.normalise_stamp(long)
    assert logs.normalise_stamp("not-a-stamp") == logs.NO_STAMP


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("level=error msg=x", 0),
        ('{"level":"warn","msg":"x"}', 1),
        ("2026-12-01 ERROR: connection refused", 0),
        ("LOG:  database system is ready", 2),
        ("[notice] nginx started", 2),
        ("GET /api/errors 200", None),
        ("no error here", None),
    ],
)
def test_levels_where_lines_carry_one(text: str, level: int | None) -> None:
    assert logs.level_of(text) == level


def test_bad_pattern_is_a_refusal_saying_where() -> None:
    with pytest.raises(logs.BadPattern, match=r"^Not a regular expression: .* at position 5"):
        logs.compile_pattern("items(")
    assert logs.compile_pattern("") is None
    pattern = logs.compile_pattern("items")
    assert pattern is not None and pattern.flags & re.IGNORECASE
    capital = logs.compile_pattern("Items")
    assert capital is not None and not capital.flags & re.IGNORECASE


def test_since() -> None:
    now = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    assert logs.parse_since("10m", now) == datetime(2026, 12, 1, 10, 20, tzinfo=UTC)
    assert logs.parse_since("1 h", now) == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert logs.parse_since("today", now) == datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(StackError, match="not a time"):
        logs.parse_since("yesterday-ish", now)


TEXTS = [
    "INFO starting",
    "ERROR: boom at /api/items",
    "GET /api/items 200",
    "ünïcode wörd ERROR",
    "level=warn slow",
    "",
    "items at the end: items",
]


@pytest.mark.parametrize(
    "keep",
    [
        LogFilter(pattern=logs.compile_pattern("items")),
        LogFilter(pattern=logs.compile_pattern("^ERROR")),
        LogFilter(pattern=logs.compile_pattern("items$")),
        LogFilter(pattern=logs.compile_pattern(r"w\w+d")),  # Unicode class: line by line
        LogFilter(pattern=logs.compile_pattern("200|slow")),
        LogFilter(pattern=logs.compile_pattern("s[^x]*g")),  # could run over a line end
        LogFilter(level="error"),
        LogFilter(level="warn"),
        LogFilter(since="2026-12-01T10:00:03.000000000Z"),
        LogFilter(pattern=logs.compile_pattern("error"), since="2026-12-01T10:00:02.0Z"),
    ],
)
def test_the_spill_scan_keeps_what_a_line_by_line_check_keeps(
    tmp_path: Path, keep: LogFilter
) -> None:
    lines = [
        LogLine("agent", f"2026-12-01T10:00:{n % 60:02d}.000000000Z", TEXTS[n % len(TEXTS)])
        for n in range(700)
    ]
    part = SpillPart(tmp_path, "agent-history", limit=1 << 30)
    for start in range(0, len(lines), 100):
        part.append(lines[start : start + 100])
    assert list(part.scan("agent", keep)) == [line for line in lines if keep.keeps(line)]
    part.close()


def test_the_spill_drops_its_oldest_segment_past_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "SEGMENT_BYTES", 1_000)
    part = SpillPart(tmp_path, "agent-live", limit=3_000)
    for n in range(50):
        part.append([LogLine("agent", logs.NO_STAMP, f"line {n:04d} " + "x" * 90)])
    kept = list(part.scan("agent", LogFilter()))
    assert part.dropped and part.bytes <= 3_000 + 1_100
    assert kept[-1].text.startswith("line 0049") and not kept[0].text.startswith("line 0000")
    assert [int(line.text[5:9]) for line in kept] == list(range(50 - len(kept), 50))
    assert {oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {"0o600"}
    part.close()


def test_the_spill_tail_reads_the_newest_lines_from_the_ends_of_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "SEGMENT_BYTES", 2_000)
    monkeypatch.setattr(logs, "SCAN_CHUNK", 64)  # several reads backwards per segment
    part = SpillPart(tmp_path, "agent-history", limit=1 << 30)
    lines = [
        LogLine("agent", f"2026-12-01T10:{n // 60:02d}:{n % 60:02d}.000000000Z", f"line {n}")
        for n in range(500)
    ]
    for start in range(0, 500, 7):
        part.append(lines[start : start + 7])
    everything = list(part.scan("agent", LogFilter()))
    assert everything == lines
    for limit in (1, 5, 100, 499, 500, 800):
        assert part.tail("agent", limit) == lines[-limit:]
    part.close()


def test_spills_of_killed_sessions_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    gone_pid = 2**22 + 17  # above pid_max's default: no such process
    orphan = tmp_path / f"{logs.SPILL_PREFIX}{gone_pid}-abc"
    alive = tmp_path / f"{logs.SPILL_PREFIX}{os.getpid()}-def"
    unrelated = tmp_path / "stack-tui-other"
    for directory in (orphan, alive, unrelated):
        directory.mkdir()
    assert logs.remove_orphaned_spills(tmp_path) == [orphan]
    assert not orphan.exists() and alive.exists() and unrelated.exists()
