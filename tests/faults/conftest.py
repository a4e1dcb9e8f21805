"""Fixtures of the fault suite.

`bigdb` is one test platform for the whole session whose dev Postgres holds a
table big enough that a dump takes about a second (so a fault can land in the
middle of it); `big` hands it to a test with an empty backups directory and
Postgres running. Tests that need their own environments build them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from faults.common import BIG_TABLE, NOTES_TABLE, postgres_running, start_postgres
from stack_tui.core.environments import Platform
from support import destroy, engine_or_skip, make_platform, psql


@pytest.fixture(scope="session")
def bigdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    engine_or_skip()
    made = make_platform(tmp_path_factory.mktemp("bigdb"))
    try:
        start_postgres(made)
        psql(made, "dev", BIG_TABLE)
        psql(made, "dev", NOTES_TABLE)
        yield made
    finally:
        destroy(made)


@pytest.fixture
def big(bigdb: Platform) -> Platform:
    """The big platform: Postgres running, nothing in data/backups, logs and audit empty."""
    if not postgres_running(bigdb):
        start_postgres(bigdb)
    for directory in (bigdb.backups_dir, bigdb.logs_dir):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(mode=0o700)
    bigdb.audit_log.unlink(missing_ok=True)
    return bigdb
