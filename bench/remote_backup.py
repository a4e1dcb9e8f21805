"""Backup of an environment on another host, over SSH, side by side with the raw pipeline.

    .venv/bin/python bench/remote_backup.py [--rounds 5] [--mb 100] [--write-doc]

Starts the second engine of tests/remote (a dockerd in its own network namespace, reached
through a real OpenSSH server there), deploys prod's PostgreSQL on it, fills it with at least
`--mb` MB of table data, then measures in alternating rounds:

- ours: the backup operation with STACK_PROD_ENGINE=ssh://root@HOST (lock, event log, audit,
  pg_dump streamed through the engine's API over the SSH tunnel, gzip, fsync, verification,
  rename), each round from a fresh tunnel, as a new `./stack backup` process would;
- raw: `ssh root@HOST docker exec C pg_dump ... | gzip > file`.

`--write-doc` replaces the "Backup over SSH" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import common
from backup_restore import FILL, ROW_BYTES, TABLE_BYTES
from common import cpu_model, docker_version, run_ok, taken_path

from stack_tui.core import compose, endpoints, engine
from stack_tui.core.pg import postgres_user
from stack_tui.ops.backup import backup
from support import destroy, make_platform

SECTION = "## Backup over SSH"


def raw_backup(ssh_config: Path, address: str, container: str, user: str, target: Path) -> float:
    started = time.perf_counter()
    with target.open("wb") as out:
        dump = subprocess.Popen(
            [
                "ssh",
                "-F",
                str(ssh_config),
                f"root@{address}",
                "docker",
                "exec",
                container,
                "pg_dump",
                "--clean",
                "--if-exists",
                "-U",
                user,
                "agent_db",
            ],
            stdout=subprocess.PIPE,
        )
        gzip = subprocess.run(["gzip", "-6"], stdin=dump.stdout, stdout=out, check=True)
        assert dump.wait() == 0 and gzip.returncode == 0
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--write-doc", action="store_true")
    options = parser.parse_args()

    import pytest

    from remote.conftest import started_remote_engine
    from support import ssh_shim

    with started_remote_engine() as remote, pytest.MonkeyPatch.context() as patch:
        base = Path(tempfile.mkdtemp(prefix="stt-bench-remote-"))
        ssh_shim(base / "bin", remote.ssh_config, patch)
        data_root = remote.root / "prod-data"
        for mount in ("qdrant", "openwebui", "letsencrypt"):
            (data_root / mount).mkdir(parents=True)
        platform = make_platform(
            base, STACK_PROD_ENGINE=remote.ssh_url, STACK_PROD_DATA_ROOT=str(data_root)
        )
        prod = platform.prod
        try:
            compose.run(prod, "up", "-d", "--wait", "postgres", timeout=600)
            client = engine.for_env(prod)
            found = engine.service_container(client, prod.project, "postgres")
            assert found is not None
            user = postgres_user(found)
            size = fill(found, user, options.mb)
            ours: list[float] = []
            raw: list[float] = []
            sizes: dict[str, int] = {}
            for index in range(options.rounds):
                endpoints.close_tunnels()  # every round pays its SSH handshake, as raw does
                started = time.perf_counter()
                done = run_ok(backup(platform, prod, keep=1_000_000))
                ours.append(time.perf_counter() - started)
                sizes["ours"] = taken_path(done).stat().st_size
                target = base / f"raw-{index}.sql.gz"
                raw.append(raw_backup(remote.ssh_config, remote.address, found.id, user, target))
                sizes["raw"] = target.stat().st_size
                print(f"round {index + 1}: ours {ours[-1]:.2f} s, raw {raw[-1]:.2f} s")
        finally:
            endpoints.close_tunnels()
            destroy(platform)
            endpoints.close_tunnels()
            shutil.rmtree(base, ignore_errors=True)  # its backups (186 MB a run)
    mb = size / 1e6
    ours_median, raw_median = statistics.median(ours), statistics.median(raw)
    lines = [
        f"Run {datetime.now():%Y-%m-%d %H:%M}, {cpu_model()}, Docker {docker_version()}, "
        f"`bench/remote_backup.py --rounds {options.rounds} --mb {options.mb}`. prod's "
        "PostgreSQL on a second dockerd in its own network namespace, reached through OpenSSH "
        "over a veth pair (the same machine: the link costs nothing, the handshakes and the "
        "copies are what is measured). Each of our rounds opens its own tunnel.",
        "",
        "| | median | range | throughput (table data) | file |",
        "|---|---|---|---|---|",
        f"| ours (`backup`, prod on ssh://) | {ours_median:.2f} s | {min(ours):.2f}-"
        f"{max(ours):.2f} s | {mb / ours_median:.0f} MB/s | {sizes['ours'] / 1e6:.1f} MB |",
        f"| raw `ssh host docker exec pg_dump \\| gzip` | {raw_median:.2f} s | {min(raw):.2f}-"
        f"{max(raw):.2f} s | {mb / raw_median:.0f} MB/s | {sizes['raw'] / 1e6:.1f} MB |",
        "",
        f"Throughput ratio ours/raw: {raw_median / ours_median:.2f}x "
        f"(table data {mb:.0f} MB; target: at least 0.95x).",
    ]
    print("\n".join(lines))
    if options.write_doc:
        common.write_doc(SECTION, lines)


def fill(container: Any, user: str, megabytes: int) -> int:
    """Add rows to `events` until the table holds at least `megabytes` MB; return its size."""

    def psql(sql: str) -> str:
        run = container.exec_run(
            [
                "psql",
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                user,
                "-d",
                "agent_db",
                "-c",
                sql,
            ]
        )
        assert run.exit_code == 0, run.output
        return str(run.output.decode().strip())

    target = megabytes * 1_000_000
    while (size := int(psql(TABLE_BYTES))) < target:
        rows = max(10_000, int((target - size) / ROW_BYTES * 1.05))
        psql(FILL.replace("ROWS", str(rows)))
    return size


if __name__ == "__main__":
    main()
