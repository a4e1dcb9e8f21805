"""Backup names, verification of crafted files, and retention: the pure parts, no engine."""

from __future__ import annotations

import gzip
import io
import os
import stat
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from stack_tui.core import audit, backups
from stack_tui.core.backups import BackupInfo
from stack_tui.core.environments import Platform
from stack_tui.ops.backup import free_name, prune_steps

DUMP = (
    b"--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n"
    b"CREATE TABLE public.notes (id integer);\n"
    b"COPY public.notes (id) FROM stdin;\n1\n2\n\\.\n\n"
    b"--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n"
)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- names ------------------------------------------------------------------------------------


def test_name_round_trip() -> None:
    when = datetime(2026, 2, 23, 17, 24, 0)
    assert backups.backup_name("prod", when) == "prod_20260223_172400.sql.gz"
    assert backups.parse_name("prod_20260223_172400.sql.gz") == ("prod", when)


@pytest.mark.parametrize(
    "name",
    [
        "staging_20260223_172400.sql.gz",  # unknown environment
        "prod_20261323_172400.sql.gz",  # month 13
        "prod_20260223_172400.sql",  # not gzip
        "prod_20260223_172400.sql.gz.bak",
        "prod_2026022_172400.sql.gz",
        ".prod_20260223_172400.sql.gz.partial",  # a backup being written is not a backup
        "x/prod_20260223_172400.sql.gz",
        "prod_20260223_172400.sql.gz\n",
    ],
)
def test_other_names_are_not_backups(name: str) -> None:
    assert backups.parse_name(name) is None


def test_partial_name_is_hidden_and_never_a_backup_name() -> None:
    partial = backups.partial_name("dev_20260223_172400.sql.gz")
    assert partial == ".dev_20260223_172400.sql.gz.partial"
    assert backups.parse_name(partial) is None


def test_list_backups_newest_first_ignoring_everything_else(tmp_path: Path) -> None:
    for name in (
        "dev_20260101_000000.sql.gz",
        "dev_20260301_000000.sql.gz",
        "prod_20260201_000000.sql.gz",
        "notes.txt",
        "dev_backup.sql.gz",
        ".dev_20260401_000000.sql.gz.partial",
    ):
        write(tmp_path / name, b"x")
    (tmp_path / "dev_20260501_000000.sql.gz").mkdir()
    (tmp_path / "dev_20260601_000000.sql.gz").symlink_to(tmp_path / "notes.txt")
    assert [b.name for b in backups.list_backups(tmp_path)] == [
        "dev_20260301_000000.sql.gz",
        "prod_20260201_000000.sql.gz",
        "dev_20260101_000000.sql.gz",
    ]
    assert [b.name for b in backups.list_backups(tmp_path, "prod")] == [
        "prod_20260201_000000.sql.gz"
    ]
    assert backups.list_backups(tmp_path / "missing") == []


def test_private_dir_even_with_a_permissive_umask(tmp_path: Path) -> None:
    wide = tmp_path / "wide"
    wide.mkdir()
    wide.chmod(0o777)
    old = os.umask(0)
    try:
        for directory in (wide, tmp_path / "new" / "backups"):
            backups.ensure_private_dir(directory)
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    finally:
        os.umask(old)


def test_human_size() -> None:
    assert backups.human_size(512) == "512 B"
    assert backups.human_size(1536) == "1.5 KB"
    assert backups.human_size(3 * 1024**3) == "3.0 GB"


# --- verification -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [
        DUMP,
        b"x\n-- PostgreSQL database dump complete\n--\n\n",  # before \restrict existed
        b"-- PostgreSQL database dump complete\n",
    ],
)
def test_trailer_found(tail: bytes) -> None:
    assert backups.dump_complete(tail)


@pytest.mark.parametrize(
    "tail",
    [
        b"COPY public.notes (id) FROM stdin;\n1\n2\n",  # cut in the data
        b"x -- PostgreSQL database dump complete\n",  # not a line of its own
        b"-- PostgreSQL database dump complete, not\n",
        b"-- PostgreSQL database dump complete\nDROP TABLE x;\n",  # SQL after the trailer
    ],
)
def test_trailer_missing(tail: bytes) -> None:
    assert not backups.dump_complete(tail)


def test_verify_accepts_a_complete_dump(tmp_path: Path) -> None:
    check = backups.verify(write(tmp_path / "ok.sql.gz", gzip.compress(DUMP)))
    assert (check.ok, check.reason, check.sql_bytes) == (True, "", len(DUMP))


def test_verify_accepts_concatenated_gzip_members(tmp_path: Path) -> None:
    half = len(DUMP) // 2
    data = gzip.compress(DUMP[:half]) + gzip.compress(DUMP[half:])
    assert backups.verify(write(tmp_path / "ok.sql.gz", data)).ok


def damaged(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (DUMP, "not a gzip file"),
        (gzip.compress(DUMP)[:-12], "truncated"),
        (gzip.compress(DUMP[: DUMP.index(backups.TRAILER)]), "trailer is missing"),
        (gzip.compress(DUMP) + b"garbage", "stray bytes"),  # shorter than a gzip header
        (gzip.compress(DUMP) + b"garbage" * 3, "damaged"),
        (damaged(gzip.compress(DUMP * 50)), "damaged"),
    ],
    # Named: the bytes carry gzip's time stamp, and pytest-xdist's workers must collect
    # the same ids.
    ids=["empty", "plain", "truncated", "no-trailer", "stray-bytes", "garbage", "damaged"],
)
def test_verify_rejects_crafted_files(tmp_path: Path, content: bytes, reason: str) -> None:
    check = backups.verify(write(tmp_path / "bad.sql.gz", content))
    assert not check.ok
    assert reason in check.reason


def test_verify_reports_an_unreadable_file(tmp_path: Path) -> None:
    check = backups.verify(tmp_path / "missing.sql.gz")
    assert not check.ok and "cannot open" in check.reason


def test_inflate_output_is_bounded_for_a_highly_compressed_file() -> None:
    zeros = 64 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, backups.GZIP_WBITS)
    data = b"".join(compressor.compress(b"\0" * (1 << 20)) for _ in range(zeros >> 20))
    data += compressor.compress(b"\n" + DUMP) + compressor.flush()
    sizes = [len(piece) for piece in backups.inflate(io.BytesIO(data))]
    assert max(sizes) <= backups.INFLATE_LIMIT
    assert sum(sizes) == zeros + 1 + len(DUMP)


# --- retention --------------------------------------------------------------------------------


def info(env: str, day: int, verified: bool | None = None, name: str = "") -> BackupInfo:
    taken = datetime(2026, 1, 1) + timedelta(days=day)
    path = Path("/b") / (name or backups.backup_name(env, taken))
    return BackupInfo(path, env, taken, 100, verified)


def names(found: list[BackupInfo]) -> set[str]:
    return {b.name for b in found}


def test_prune_keeps_the_newest_per_environment() -> None:
    dev = [info("dev", day) for day in range(7)]
    prod = [info("prod", day) for day in range(3)]
    assert names(backups.plan_prune(dev + prod, 5)) == names(dev[:2])


def test_prune_nothing_at_or_under_keep() -> None:
    assert backups.plan_prune([info("dev", day) for day in range(5)], 5) == []


def test_bad_backups_do_not_count_towards_keep() -> None:
    found = [info("dev", day, verified=day not in (5, 6)) for day in range(8)]
    # good: days 7, 4, 3, 2, 1 -> everything older than day 1 goes; the bad days 5 and 6 stay
    assert names(backups.plan_prune(found, 5)) == names(found[:1])


def test_never_deletes_the_last_good_backup() -> None:
    found = [info("dev", 0, verified=True)] + [info("dev", d, verified=False) for d in range(1, 9)]
    assert backups.plan_prune(found, 1) == []
    # with a newer good one, everything older goes, bad or not
    assert names(backups.plan_prune([*found, info("dev", 9, verified=True)], 1)) == names(found)


def test_prune_never_returns_a_file_without_a_backup_name() -> None:
    found = [info("dev", day) for day in range(7)]
    strays = [
        info("dev", -5, name="dev_backup.sql.gz"),
        info("dev", -6, name="notes.txt"),
        info("prod", -7, name="dev_20250101_000000.sql.gz"),
    ]  # named for another env
    assert names(backups.plan_prune(found + strays, 5)) == names(found[:2])


def test_keep_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        backups.plan_prune([], 0)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    data = tmp_path / "data"
    backups.ensure_private_dir(data / "backups")
    yield Platform(
        root=tmp_path,
        data_dir=data,
        env_file=tmp_path / ".env",
        dev_project="stt-unit-dev",
        prod_project="stt-unit-prod",
    )


def test_prune_step_verifies_files_and_audits_each_deletion(platform: Platform) -> None:
    directory = platform.backups_dir
    good = gzip.compress(DUMP)
    made = [
        write(directory / backups.backup_name("dev", datetime(2026, 1, day)), good)
        for day in range(1, 8)
    ]
    write(made[5], good[:-10])  # the second newest is damaged: it does not count
    write(directory / "notes.txt", b"mine")
    list(prune_steps(platform, platform.dev, keep=5))
    left = sorted(p.name for p in directory.iterdir())
    assert left == sorted(["notes.txt"] + [p.name for p in made[1:]])
    entries = audit.read(platform.audit_log)
    assert [(e["operation"], e["env"], e["arguments"]["file"], e["result"]) for e in entries] == [
        ("prune", "dev", made[0].name, "ok")
    ]


def test_a_taken_name_waits_for_the_next_second(tmp_path: Path) -> None:
    now = datetime.now().replace(microsecond=0)
    taken = backups.backup_name("dev", now)
    write(tmp_path / taken, b"x")
    name = free_name(tmp_path, "dev")
    parsed = backups.parse_name(name)
    assert name != taken and parsed is not None and parsed[1] > now


def test_inflate_reads_several_members_and_checks_each_crc() -> None:
    whole = gzip.compress(b"-- part one\n") + gzip.compress(DUMP)
    assert b"".join(backups.inflate(io.BytesIO(whole))) == b"-- part one\n" + DUMP
    bad_crc = bytearray(gzip.compress(DUMP))
    bad_crc[-8] ^= 0xFF  # the CRC32 in the trailer
    check = backups.verify_stream(io.BytesIO(bytes(bad_crc)))
    assert not check.ok and "damaged" in check.reason and "CRC" in check.reason
