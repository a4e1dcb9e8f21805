"""Search over 100 MB of a service's log, side by side with `docker logs C | grep` in one run.

    .venv/bin/python bench/logs_search.py [--rounds 3] [--mb 100] [--write-doc]

Builds its own test platform (unique project names, removed afterwards) with one container,
labelled as its dev `agent`, that writes MB of 100-byte lines and one needle, then exits.
Then, rounds alternating which goes first:

- baseline: `docker logs C | grep -c NEEDLE`, what an operator types (the engine reads and
  sends the whole log every time);
- ours: `LogSession.search` for the same needle over the session's spill (the log was read
  from the engine once, when the session opened: that read is timed separately, once).

Also: a level filter (error lines) and a search matching every line over the same spill,
and the peak RSS of this process (the log is never held in memory).
`--write-doc` replaces the "Logs search" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform as host
import resource
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from common import cpu_model, docker_version, write_doc

from stack_tui.core import engine, logs
from support import TEST_IMAGES, destroy, engine_or_skip, make_platform

NEEDLE = "ERROR needle-5f2c found"
PATTERN = "needle-5f2c"


def baseline(container: str) -> tuple[float, int]:
    started = time.monotonic()
    reader = subprocess.Popen(["docker", "logs", container], stdout=subprocess.PIPE)
    counted = subprocess.run(["grep", "-c", PATTERN], stdin=reader.stdout, capture_output=True)
    reader.wait()
    return time.monotonic() - started, int(counted.stdout or 0)


def ours(session: logs.LogSession, keep: logs.LogFilter) -> tuple[float, int]:
    started = time.monotonic()
    found = session.search(keep)
    return time.monotonic() - started, found.matched


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args()
    client = engine_or_skip()
    platform = make_platform(Path(tempfile.mkdtemp(prefix="bench-logs-")))
    name = f"{platform.dev.project}-agent-1"
    load_start = os.getloadavg()[0]
    try:
        lines = args.mb * 10_000
        client.containers.run(
            TEST_IMAGES["AGENT_IMAGE"],
            ["sh", "-c", f"yes '{'x' * 99}' | head -n {lines}; echo '{NEEDLE}'"],
            detach=True,
            name=name,
            labels={engine.PROJECT_LABEL: platform.dev.project, engine.SERVICE_LABEL: "agent"},
        )
        client.containers.get(name).wait(timeout=600)
        session = logs.LogSession(logs.sources_for(platform.dev, ["agent"]), lambda _: None)
        started = time.monotonic()
        session.start()
        while session.reading:
            time.sleep(0.05)
        fill = time.monotonic() - started
        needle = logs.LogFilter(pattern=logs.compile_pattern(PATTERN))
        base_times, our_times = [], []
        for round_ in range(args.rounds):
            order = (0, 1) if round_ % 2 == 0 else (1, 0)
            for side in order:
                if side == 0:
                    seconds, count = baseline(name)
                    base_times.append(seconds)
                else:
                    seconds, count = ours(session, needle)
                    our_times.append(seconds)
                assert count == 1, (side, count)
                print(f"round {round_} {'baseline' if side == 0 else 'ours'}: {seconds:.2f} s")
        level_s, level_n = ours(session, logs.LogFilter(level="error"))
        every_s, every_n = ours(session, logs.LogFilter(pattern=logs.compile_pattern("x")))
        newest_s, _ = ours(session, logs.LogFilter())
        spilled = session.spilled_bytes
        session.close()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        destroy(platform)
    base, our = statistics.median(base_times), statistics.median(our_times)
    rows = [
        f"Measured {datetime.now():%Y-%m-%d %H:%M} on {os.cpu_count()} cores ({cpu_model()}), "
        f"Linux {host.release()}, Docker Engine {docker_version()} (json-file log driver), "
        f"Python {host.python_version()}, load average at start {load_start:.2f}.",
        "",
        "Reproduce: `.venv/bin/python bench/logs_search.py --write-doc` "
        f"(here `--rounds {args.rounds} --mb {args.mb}`). One service's log of "
        f"{args.mb} MB (100-byte lines) and one needle line; medians of {args.rounds} rounds, "
        "alternating which side goes first.",
        "",
        "| measure | ours | baseline `docker logs C \\| grep -c` | ratio | target |",
        "|---|---|---|---|---|",
        f"| search for one needle, median s | {our:.2f} | {base:.2f} | **{base / our:.0f}x** "
        "| <= 1 s |",
        f"| level filter (error lines), s | {level_s:.2f} ({level_n} line) | | | |",
        f"| a search every line matches, s | {every_s:.2f} ({every_n:,} lines) | | | |",
        f"| no filter: the newest {logs.VIEW_LINES:,} lines, s | {newest_s:.2f} | | | |",
        f"| the log read from the engine into the spill, once per session, s | {fill:.1f} "
        f"({spilled / 1e6:.0f} MB spilled) | | | |",
        f"| peak RSS of the process (log read, spilled, searched) | {peak:.0f} MB | | | |",
        "",
        f"Rounds: ours {', '.join(f'{t:.2f}' for t in our_times)} s; baseline "
        f"{', '.join(f'{t:.2f}' for t in base_times)} s; load average at the end "
        f"{os.getloadavg()[0]:.2f}.",
        "",
        "Where the time goes: dockerd decodes its json-file log line by line and sends it "
        "all for every `docker logs`, so the baseline pays the whole read each time. A "
        "`LogSession` pays it once, in background threads, while the screen already shows the "
        "engine's tail and the live lines; searches then scan the spill (text and stamps in "
        "separate files), finding candidate lines with one regular expression over 4 MB "
        "chunks of bytes (ASCII-lowered for a case-insensitive search) and decoding only "
        "those lines. A search that matches every line builds every line (the last "
        f"slower row); the screen keeps only the newest {logs.VIEW_LINES:,} of them.",
    ]
    print("\n".join(rows))
    if args.write_doc:
        write_doc("## Logs search", rows)


if __name__ == "__main__":
    main()
