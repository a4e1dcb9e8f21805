"""The dump reader a drill relies on: rows per COPY block and the TOC, in any piece sizes."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from stack_tui.core import drills

DUMP = b"""--
-- PostgreSQL database dump
--

--
-- Name: notes; Type: TABLE; Schema: public; Owner: agent
--

CREATE TABLE public.notes (
    id integer NOT NULL,
    body text
);

--
-- Name: Odd Name; Type: TABLE; Schema: public; Owner: agent
--

CREATE TABLE public."Odd Name" (v text);

--
-- Name: twice(integer); Type: FUNCTION; Schema: public; Owner: agent
--

--
-- Data for Name: notes; Type: TABLE DATA; Schema: public; Owner: agent
--

COPY public.notes (id, body) FROM stdin;
1\tone\\nCOPY x FROM stdin;
2\t\\\\.
3\t-- Name: fake; Type: TABLE; Schema: public; Owner: x
\\.


--
-- Data for Name: Odd Name; Type: TABLE DATA; Schema: public; Owner: agent
--

COPY public."Odd Name" (v) FROM stdin;
\\.


--
-- Name: notes notes_pkey; Type: CONSTRAINT; Schema: public; Owner: agent
--

ALTER TABLE ONLY public.notes
    ADD CONSTRAINT notes_pkey PRIMARY KEY (id);

--
-- PostgreSQL database dump complete
--
"""


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(DUMP)])
def test_rows_and_objects_whatever_the_piece_size(size: int) -> None:
    counter = drills.DumpCounter()
    for start in range(0, len(DUMP), size):
        counter.feed(DUMP[start : start + size])
    assert counter.rows == {"public.notes": 3, 'public."Odd Name"': 0}
    assert [(o.kind, o.schema, o.name) for o in counter.objects] == [
        ("TABLE", "public", "notes"),
        ("TABLE", "public", "Odd Name"),
        ("FUNCTION", "public", "twice(integer)"),
        ("CONSTRAINT", "public", "notes notes_pkey"),
    ]


def test_a_record_round_trips_private(tmp_path: Path) -> None:
    backup = tmp_path / "dev_20260101_000000.sql.gz"
    backup.write_bytes(b"x")
    record = drills.DrillRecord(ok=True, reason="", at=time.time() - 7300, seconds=41.2)
    drills.write(backup, record)
    assert drills.read(backup) == record
    assert stat.S_IMODE(drills.sidecar(backup).stat().st_mode) == 0o600
    assert record.summary() == "drilled ok 2h ago, 41 s"
    bad = drills.DrillRecord(
        ok=False, reason="the gzip data is truncated", at=time.time(), seconds=1.0
    )
    drills.write(backup, bad)
    assert drills.failed(backup)
    assert drills.read(backup).summary().startswith("drill FAILED <1m ago: the gzip")  # type: ignore[union-attr]
    drills.write_manifest(backup, {"public.notes": 3})
    assert drills.read_manifest(backup) == {"public.notes": 3}
    drills.forget(backup)
    assert drills.read(backup) is None and drills.read_manifest(backup) is None
    assert [p.name for p in tmp_path.iterdir()] == [backup.name]


def test_unreadable_sidecar_is_no_record(tmp_path: Path) -> None:
    backup = tmp_path / "dev_20260101_000000.sql.gz"
    drills.sidecar(backup).write_text("{not json")
    assert drills.read(backup) is None and not drills.failed(backup)


def test_retention_never_counts_a_failed_drill_as_good(tmp_path: Path) -> None:
    from datetime import datetime, timedelta

    from stack_tui.core import backups

    start = datetime(2026, 1, 1)
    infos = []
    for hours in range(4):  # newest last
        name = backups.backup_name("prod", start + timedelta(hours=hours))
        infos.append(backups.BackupInfo(tmp_path / name, "prod", start + timedelta(hours=hours), 1))
    failed = drills.DrillRecord(ok=False, reason="x", at=0.0, seconds=0.0)
    newest = infos[-1]
    infos[-1] = backups.BackupInfo(newest.path, "prod", newest.taken, 1, drill=failed)
    doomed = backups.plan_prune(infos, keep=2)
    # The failed newest one is not one of the two kept good ones: only the oldest goes.
    assert [b.name for b in doomed] == [infos[0].name]
    assert not backups.counts_as_good(infos[-1])
