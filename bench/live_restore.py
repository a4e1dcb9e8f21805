"""Restore on a live platform: load speed and the application's downtime, against raw psql.

    .venv/bin/python bench/live_restore.py [--mb 200 1000] [--rounds 3] [--write-doc]

Builds its own test platform (unique project names, a temporary data
directory; removed afterwards), deploys dev whole (postgres, qdrant, agent,
openwebui), fills its database with `--mb` MB of table data, takes a backup
with our backup operation, then per round, in alternating order:

- raw load: `gunzip -c FILE | docker exec -i C psql -X -q -v ON_ERROR_STOP=1`
  into a fresh database, with the same client querying meanwhile (below) as
  during ours: the load phase's baseline;
- raw restore over the live database: the same pipeline with
  `--single-transaction` into the environment's database (the dump is
  `--clean --if-exists`), the way it is done by hand: its downtime baseline;
- ours: the restore operation (load into a new database, row check, ANALYZE,
  switch-over), its load phase timed from its own events.

Downtime is measured from a client's point of view: a probe inside the
Postgres container runs `SELECT ... FROM events LIMIT 1` against the
environment's database name in a loop (a new connection per query, as a
restarting application does); the downtime is the longest gap between two
successful answers while the restore runs (a query that fails or waits counts
as down). For ours, the services' own stop and start are reported apart from
the switch itself (the rename, with the sessions ended), whose bound is 5 s.

`--write-doc` replaces the "Restore on a live database" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import common
from backup_restore import KEEP_ALL, container_of, fill, machine, raw_load
from common import DOC, result, run_ok, taken_path

from stack_tui.core import compose
from stack_tui.core.environments import Environment, Platform
from stack_tui.ops.backup import backup
from stack_tui.ops.events import Event, Restored, StepFinished, StepStarted
from stack_tui.ops.restore import restore
from support import destroy, drive, engine_or_skip, make_platform, psql

SECTION = "## Restore on a live database"
#: Ends by itself when its stop file appears (a killed `docker exec` leaves it running) or
#: after ten minutes.
PROBE = (
    "end=$(( $(date +%s) + 600 )); while [ ! -e {stop} ] && [ $(date +%s) -lt $end ]; do "
    "if psql -X -q -A -t -U {user} -d {db} -c 'SELECT id FROM events LIMIT 1' "
    ">/dev/null 2>&1; then echo ok $(date +%s.%N); else echo fail $(date +%s.%N); fi; done"
)


class Probe:
    """A client querying the environment's database in a loop, inside its container."""

    def __init__(self, env: Environment) -> None:
        self.container, user = container_of(env)
        self.stop_file = f"/tmp/stop-probe-{time.monotonic_ns()}"
        script = PROBE.format(user=user, db=env.db_name, stop=self.stop_file)
        self.proc = subprocess.Popen(
            ["docker", "exec", self.container, "bash", "-c", script],
            stdout=subprocess.PIPE,
            text=True,
        )

    def stop(self, start: float, end: float) -> float:
        """The longest time without a successful answer between `start` and `end` (epoch s)."""
        subprocess.run(["docker", "exec", self.container, "touch", self.stop_file], check=True)
        out, _ = self.proc.communicate(timeout=60)
        oks = [
            float(t)
            for word, t in (line.split() for line in out.splitlines() if line.count(" ") == 1)
            if word == "ok"
        ]
        inside = [t for t in oks if start <= t <= end]
        edges = [start, *inside, end]
        return max(b - a for a, b in itertools.pairwise(edges))


def settle(platform: Platform) -> None:
    """Each measurement starts with no dirty buffers: neither side pays for the other's writes."""
    psql(platform, "dev", "CHECKPOINT")
    os.sync()


def step(events: list[Event], name: str) -> float:
    begin = next(e.at for e in events if isinstance(e, StepStarted) and e.step == name)
    end = next(e.at for e in events if isinstance(e, StepFinished) and e.step == name)
    return end - begin


def measure(platform: Platform, source: Path, rounds: int) -> dict[str, list[float]]:
    env = platform.dev
    got: dict[str, list[float]] = {
        k: []
        for k in (
            "raw_load",
            "raw_live",
            "raw_live_down",
            "ours_load",
            "ours_down_probe",
            "ours_stop",
            "ours_switch",
            "ours_start",
            "ours_whole",
        )
    }
    for number in range(rounds):
        order = ("ours", "raw") if number % 2 == 0 else ("raw", "ours")
        for who in order:
            settle(platform)
            if who == "raw":
                psql(platform, "dev", "DROP DATABASE IF EXISTS bench_raw_target")
                psql(platform, "dev", "CREATE DATABASE bench_raw_target")
                # The same client querying meanwhile as during ours: both loads share the CPU.
                probe = Probe(env)
                began = time.time()
                got["raw_load"].append(raw_load(env, source, "bench_raw_target"))
                probe.stop(began, time.time())
                psql(platform, "dev", "DROP DATABASE bench_raw_target")
                settle(platform)
                probe = Probe(env)
                time.sleep(1)
                began = time.time()
                got["raw_live"].append(raw_load(env, source, env.db_name, "--single-transaction"))
                got["raw_live_down"].append(probe.stop(began, time.time()))
            else:
                probe = Probe(env)
                time.sleep(1)
                began = time.time()
                events = drive(restore(platform, env, source))
                ended = time.time()
                done = result(events)
                got["ours_down_probe"].append(probe.stop(began, ended))
                got["ours_load"].append(step(events, "load"))
                got["ours_stop"].append(step(events, "stop"))
                got["ours_switch"].append(step(events, "switch"))
                got["ours_start"].append(step(events, "start"))
                got["ours_whole"].append(ended - began)
                assert isinstance(done.payload, Restored) and done.payload.downtime > 0
        print(
            f"  round {number + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in got.items()),
            flush=True,
        )
    return got


def table(mb: int, table_bytes: int, file_bytes: int, got: dict[str, list[float]]) -> list[str]:
    m = {k: statistics.median(v) for k, v in got.items()}
    paired = statistics.median(
        r / o for r, o in zip(got["raw_load"], got["ours_load"], strict=True)
    )
    app_down = m["ours_stop"] + m["ours_switch"] + m["ours_start"]
    return [
        f"### {table_bytes / 1e6:.0f} MB of table data ({file_bytes / 1e6:.0f} MB backup file)",
        "",
        "| measure | ours | raw psql | ratio | target |",
        "|---|---|---|---|---|",
        f"| load phase, median s | {m['ours_load']:.2f} | {m['raw_load']:.2f} (into a fresh "
        f"database) | **{m['raw_load'] / m['ours_load']:.2f}x** (per-round "
        f"{paired:.2f}x) | >= 0.95x |",
        f"| whole operation, median s | {m['ours_whole']:.2f} (validate, load, row check, "
        f"ANALYZE, switch-over) | {m['raw_live']:.2f} (over the live database, one "
        "transaction) | | |",
        f"| a client's longest wait or failure, median s | **{m['ours_down_probe']:.2f}** | "
        f"**{m['raw_live_down']:.2f}** | | ours <= 5 s + stop/start |",
        f"| the switch itself (sessions ended, rename), median s | **{m['ours_switch']:.2f}** | "
        "| | <= 5 s, flat with size |",
        f"| the services' own stop + start (healthy), median s | {m['ours_stop']:.2f} + "
        f"{m['ours_start']:.2f} | | | |",
        f"| the application down (stop to healthy), median s | {app_down:.2f} | "
        f"{m['raw_live_down']:.2f} (the whole load) | | |",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write-doc", action="store_true", help=f"update {DOC.name}")
    options = parser.parse_args()
    engine_or_skip()
    about = machine()
    print(about, flush=True)
    lines = [
        f"Measured {datetime.now():%Y-%m-%d %H:%M} on {about}.",
        "",
        "Reproduce: `.venv/bin/python bench/live_restore.py --write-doc` (here with "
        f"`--mb {' '.join(map(str, options.mb))} --rounds {options.rounds}`). Medians; ours "
        "and raw alternate first within each round; ratio = raw seconds / our seconds.",
        "",
    ]
    for mb in options.mb:
        base = Path(tempfile.mkdtemp(prefix="stack-tui-bench-"))
        platform = make_platform(base)
        try:
            compose.run(platform.dev, "up", "-d", "--wait")
            size = fill(platform, "dev", mb)
            source = taken_path(run_ok(backup(platform, platform.dev, keep=KEEP_ALL)))
            print(
                f"{size / 1e6:.0f} MB of table data, {source.stat().st_size / 1e6:.0f} MB file:",
                flush=True,
            )
            got = measure(platform, source, options.rounds if mb <= 300 else 1)
            lines += table(mb, size, source.stat().st_size, got)
        finally:
            destroy(platform)
            shutil.rmtree(base, ignore_errors=True)
    lines += [
        "The raw restore keeps the application's tables locked for the whole load (its",
        "DROP TABLEs take ACCESS EXCLUSIVE locks inside one transaction): a client's wait",
        "grows with the database. Ours loads beside the live database, so a client waits",
        "only while the services stop, the two names swap and they start again.",
    ]
    print("\n".join(lines))
    if options.write_doc:
        common.write_doc(SECTION, lines)


if __name__ == "__main__":
    main()
