"""What resource use (`t`) costs: the TUI with it on, with it off, and the TUI as it was
before this branch ("today"), side by side over the same idle windows.

    .venv/bin/python bench/tui_resources.py [--idle 20] [--rounds 3] [--today REV] [--write-doc]

Builds its own test platform (unique project names, a temporary data directory) with both
environments deployed (9 containers), removed afterwards. The three TUIs run at the same
time, each in a 120x40 terminal of a private tmux server; each round measures all three over
the same `--idle` seconds: CPU of each process tree (utime + stime from /proc/PID/stat) and
bytes written to its terminal (`tmux pipe-pane`). The engine's own CPU (dockerd, which reads
the cgroups for every stats stream) is measured over the same windows; it is a shared engine,
so other work on it counts there too. Medians over the rounds. `--write-doc` replaces the
"TUI resource use" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import common
from common import TICK, Session, describe, run_ok, tree_ticks
from tui_bench import launchers, machine, today_tree

from stack_tui.core.environments import Platform
from stack_tui.ops.deploy import deploy
from support import destroy, engine_or_skip, make_platform

SECTION = "## TUI resource use"
PACE = 0.15
wait = functools.partial(common.wait, timeout=60.0, poll=0.05)
UIS = ("on", "off", "today")


def populated(screen: str) -> bool:
    return "Services (4/4 ok)" in screen and "Services (5/5 ok)" in screen and "d Deploy" in screen


def sampled(screen: str) -> bool:
    """Every one of the 9 services shows a CPU figure (a stream's second sample)."""
    return screen.count(" %  mem ") >= 9


def dockerd_ticks() -> int:
    pid = int(Path("/var/run/docker.pid").read_text())
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def measure(
    sessions: dict[str, Session], seconds: float, scratch: Path
) -> dict[str, tuple[float, int]]:
    """Per UI over the same window: (% of one core, bytes written to its terminal)."""
    pids = {ui: session.pid() for ui, session in sessions.items()}
    outputs = {ui: scratch / f"{ui}-{time.monotonic_ns()}.out" for ui in sessions}
    for ui, session in sessions.items():
        outputs[ui].write_bytes(b"")
        session.pipe_to(outputs[ui])
    before = {ui: tree_ticks(pid) for ui, pid in pids.items()}
    engine_before = dockerd_ticks()
    time.sleep(seconds)
    engine_after = dockerd_ticks()
    after = {ui: tree_ticks(pid) for ui, pid in pids.items()}
    for session in sessions.values():
        session.pipe_to(None)
    found = {
        ui: (100 * (after[ui] - before[ui]) / TICK / seconds, outputs[ui].stat().st_size)
        for ui in sessions
    }
    found["dockerd"] = (100 * (engine_after - engine_before) / TICK / seconds, 0)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=float, default=20.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--today", default="", help="revision to compare with (default: main)")
    parser.add_argument("--write-doc", action="store_true")
    options = parser.parse_args()
    engine_or_skip()
    run_id = uuid.uuid4().hex[:8]
    base = Path(tempfile.mkdtemp(prefix="stack-tui-bench-"))
    platform: Platform = make_platform(base)
    sessions: dict[str, Session] = {}
    rev = common.baseline_rev(options.today)
    try:
        about = machine()
        print(about, flush=True)
        for name in ("dev", "prod"):
            run_ok(deploy(platform, platform.env(name)))
        commands = launchers(describe(platform), today_tree(rev, base))
        for ui in UIS:
            command = commands["today" if ui == "today" else "stack-tui"]
            sessions[ui] = Session(f"t-{ui}", command, socket=f"stt-res-{run_id}-{ui}", pace=PACE)
        for session in sessions.values():
            wait(lambda s=session: populated(s.screen()), "populated")
        time.sleep(3)  # the checks and the backups' verification after the first paint
        sessions["on"].keys("t")
        try:
            wait(lambda: sampled(sessions["on"].screen()), "resource use shown")
        except TimeoutError:
            print(sessions["on"].screen())
            raise
        time.sleep(2)
        rounds = [measure(sessions, options.idle, base) for _ in range(options.rounds)]
        print(rounds, flush=True)
        lines = report(about, options, rev, rounds)
        print("\n".join(lines))
        if options.write_doc:
            common.write_doc(SECTION, lines)
    finally:
        for session in sessions.values():
            session.close()
        destroy(platform)


def report(
    about: str, options: argparse.Namespace, rev: str, rounds: list[dict[str, tuple[float, int]]]
) -> list[str]:
    def cell(ui: str, index: int, unit: str) -> str:
        values = [row[ui][index] for row in rounds]
        show = (lambda v: f"{v:.2f} %") if unit == "%" else (lambda v: f"{v:,.0f} B")
        return f"{show(statistics.median(values))} [{', '.join(show(v) for v in values)}]"

    return [
        f"`bench/tui_resources.py --idle {options.idle:g} --rounds {options.rounds}`, "
        f"{datetime.now():%Y-%m-%d}, {about}. Both environments deployed (9 containers); the "
        "three TUIs run at the same time in 120x40 terminals and are measured over the same "
        f'{options.idle:g} s windows, nothing else happening on the platform. "today" is the '
        f"TUI at {rev[:7]}. Medians; every round in brackets.",
        "",
        "| measure | resource use on (t) | off | today | target |",
        "|---|---|---|---|---|",
        f"| CPU of the TUI (% of one core) | {cell('on', 0, '%')} | {cell('off', 0, '%')} "
        f"| {cell('today', 0, '%')} | on <= 1 %; off <= today |",
        f"| bytes written to the terminal | {cell('on', 1, 'B')} | {cell('off', 1, 'B')} "
        f"| {cell('today', 1, 'B')} | off <= today |",
        f"| dockerd CPU over the same windows (shared engine: everything on it) "
        f"| {cell('dockerd', 0, '%')} | | | |",
        "",
        f"CPU is counted in clock ticks of 10 ms: one tick over {options.idle:g} s is "
        f"{1 / options.idle:.2f} % of a core, the resolution of the CPU row. "
        "On, the TUI follows one stats stream per running container of the panes on screen "
        "(9 here), keeps a minute of samples per service, and redraws the two resource "
        "sections at most once a second. Off (the default), no stream is open and nothing "
        "ticks: the cost is the same as today's. A screen over the panes (logs, checks, a "
        "shell) closes the streams too.",
    ]


if __name__ == "__main__":
    main()
