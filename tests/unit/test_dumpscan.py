"""core.dumpscan: what a dump may hold, its rows per table, whatever the piece boundaries."""

from __future__ import annotations

import pytest

from stack_tui.core import dumpscan

DUMP = (
    b"--\n-- PostgreSQL database dump\n--\n\n\\restrict KEY\n\nSET lock_timeout = 0;\n"
    b"COPY public.notes (id, body) FROM stdin;\n1\tone\n2\t\\\\. not an end\n3\tthree\n\\.\n\n"
    b'COPY public."Odd Name" (id) FROM stdin;\n\\.\n'
    b"CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n"
    b"COMMENT ON TABLE public.notes IS 'the program of the day';\n"
    b"--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict KEY\n"
)


def scan_in_pieces(data: bytes, size: int) -> dumpscan.Scanner:
    scanner = dumpscan.Scanner()
    for at in range(0, len(data), size):
        scanner.feed(data[at : at + size])
    scanner.finish()
    return scanner


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 1 << 20])
def test_rows_and_lines_do_not_depend_on_where_the_pieces_end(size: int) -> None:
    scanner = scan_in_pieces(DUMP, size)
    assert scanner.rows == {"public.notes": 3, 'public."Odd Name"': 0}
    assert scanner.line == DUMP.count(b"\n")


#: A refused line -> what the refusal says (either is right when two rules apply), its line.
REFUSED = {
    b"\\! rm -rf /\n": (("meta-command \\!",), 3),
    b"\\copy t from program 'x'\n": (("meta-command \\copy", "runs a program"), 3),
    b"\\connect agent_db\n": (("switch the load to another database",), 3),
    b"\\c agent_db\n": (("switch the load to another database",), 3),
    b"COPY public.t FROM PROGRAM 'id';\n": (("not pg_dump's", "runs a program"), 3),
    b"COPY public.t (a) FROM '/etc/passwd';\n": (("not pg_dump's",), 3),
    b"copy public.t (a) to '/tmp/x';\n": (("not pg_dump's",), 3),
    b"COPY a;DROP (x) FROM stdin;\n": (("not pg_dump's",), 3),
    b"SELECT 1; COPY t TO\n  PROGRAM 'id';\n": (("runs a program",), 4),
    b"CREATE DATABASE agent_db WITH TEMPLATE = template0;\n": (("pg_dump --create",), 3),
    b"  alter database agent_db set search_path = x;\n": (("changes a database",), 3),
    b"DROP DATABASE agent_db_dev;\n": (("changes a database",), 3),
}


@pytest.mark.parametrize("line", list(REFUSED), ids=[r.decode()[:30] for r in REFUSED])
@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_what_pg_dump_never_writes_is_refused_with_its_line(line: bytes, size: int) -> None:
    data = b"SET x = 1;\n-- a comment about the database\n" + line + b"SET y = 2;\n"
    with pytest.raises(dumpscan.UnsafeDump) as refused:
        scan_in_pieces(data, size)
    said, number = REFUSED[line]
    assert any(words in refused.value.message for words in said), refused.value.message
    assert refused.value.message.startswith(f"line {number} "), refused.value.message


def test_a_huge_line_is_scanned_in_bounded_memory() -> None:
    scanner = dumpscan.Scanner()
    scanner.feed(b"-- PostgreSQL database dump\n")
    for _ in range(64):
        scanner.feed(b"\0" * (1 << 20))
    assert len(scanner._head or b"") <= dumpscan.HEAD
    scanner.finish()


CLEAN = (
    b"\\restrict KEY\nSET lock_timeout = 0;\n\n"
    b"ALTER TABLE ONLY public.t DROP CONSTRAINT t_pkey;\nDROP VIEW public.v;\n"
    b"DROP TABLE public.t;\nDROP SCHEMA public;\n--\n-- Name: public; Type: SCHEMA\n--\n\n"
    b"CREATE SCHEMA public;\nDROP TABLE later_on;\n"
)


def test_a_clean_preamble_is_made_harmless_for_an_empty_database() -> None:
    out = b"".join(dumpscan.for_empty_database([CLEAN[:40], CLEAN[40:]]))
    lines = out.split(b"\n")
    assert b"-- nothing to drop in a new database: DROP VIEW public.v;" in lines
    assert (
        b"-- nothing to drop in a new database: ALTER TABLE ONLY public.t DROP CONSTRAINT "
        b"t_pkey;" in lines
    )
    assert b"DROP SCHEMA IF EXISTS public;" in lines
    assert b"DROP TABLE later_on;" in lines  # after the first object: untouched
    assert b"\\restrict KEY" in lines


def test_if_exists_and_plain_dumps_pass_unchanged() -> None:
    if_exists = CLEAN.replace(b"DROP VIEW ", b"DROP VIEW IF EXISTS ").replace(
        b"DROP TABLE public", b"DROP TABLE IF EXISTS public"
    )
    out = b"".join(dumpscan.for_empty_database([if_exists]))
    assert b"DROP VIEW IF EXISTS public.v;" in out.split(b"\n")
    assert b"".join(dumpscan.for_empty_database([DUMP])) == DUMP
