"""Load: the TUI with 200 unrelated containers churning, and a backup of a 1 GB database.

    .venv/bin/python bench/load_containers.py [--containers 200] [--seconds 30]
        [--gb 1.0] [--skip-backup] [--skip-load] [--write-doc]

Builds its own test platform (unique project names, a temporary data
directory), deploys both environments, and removes all of it afterwards.

Load: the real TUI runs in a 120x40 tmux terminal (read back with
`capture-pane`, as a person would read it). `--containers` unrelated
containers (stack-tui-test/agent:1, labelled with this run's id, no network)
are created, then started and killed over and over by four threads for
`--seconds`. Measured, side by side with the same TUI idle beforehand:

- CPU of the TUI's process tree (utime + stime of it and its children, from
  /proc), as a share of one core, idle and during the churn; and dockerd's;
- what the TUI writes to its terminal (`tmux pipe-pane`) per second;
- correctness and responsiveness during the churn: every few seconds dev's
  agent is killed and started again (`docker kill` / `docker start`), timed
  until the dev pane shows each change; `?` is pressed and timed until the
  help screen is drawn; at the end the panes' service states are compared with
  the engine's and no unrelated container may appear in them.

Backup: dev's database is filled with at least `--gb` GB of table data, then
our backup operation runs in a child process whose resident memory is sampled
every 50 ms (VmRSS) and whose peak (VmHWM) is read at the end: memory flat
means the peak stays near the process's size after imports, whatever the size
of the database.

`--write-doc` replaces the "Load" section at the end of docs/benchmarks.md
(re-read just before writing; other sections untouched).
"""

from __future__ import annotations

import argparse
import os
import platform as host
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import common
import docker
from common import (
    LAUNCHER,
    TICK,
    Session,
    cpu_model,
    describe,
    docker_version,
    pane_state,
    run_ok,
    tree_ticks,
    wait,
)

from stack_tui.core import engine
from stack_tui.core.environments import Platform
from stack_tui.ops.deploy import deploy
from support import TEST_IMAGES, destroy, engine_or_skip, make_platform, psql

SECTION = "## Load"
PAGE = os.sysconf("SC_PAGE_SIZE")
IMAGE = TEST_IMAGES["AGENT_IMAGE"]
#: ~180 bytes per row with its index entry: about 5.5 million rows per GB.
FILL = (
    "INSERT INTO load SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) "
    "FROM generate_series({first}, {last}) g"
)


# --- small tools -------------------------------------------------------------------------------


def ticks(root: int) -> int:
    """CPU of `root`'s process tree, with what its dead children used."""
    return tree_ticks(root, reaped=True)


def dockerd_pid() -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "dockerd":
                    return int(entry.name)
            except OSError:
                continue
    return None


def machine() -> str:
    return (
        f"{cpu_model()}, {os.cpu_count()} CPUs, Linux {host.release()}, "
        f"Docker Engine {docker_version()}, Python {host.python_version()}, "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )


# --- load ---------------------------------------------------------------------------------------


class Churn:
    """Four threads starting and killing the crowd until stopped; counts what they did."""

    def __init__(self, crowd: list[docker.models.containers.Container]) -> None:
        self.crowd = crowd
        self.done = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(crowd[n::4],), daemon=True) for n in range(4)
        ]

    def _run(self, mine: list[docker.models.containers.Container]) -> None:
        up = False
        while not self._stop.is_set():
            up = not up
            for container in mine:
                if self._stop.is_set():
                    return
                try:
                    container.start() if up else container.kill()
                except docker.errors.APIError:
                    continue  # already in that state
                with self._lock:
                    self.done += 1

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)


def measure_load(
    platform: Platform, containers: int, seconds: float, scratch: Path
) -> dict[str, object]:
    client = docker.from_env(timeout=120)
    run_id = uuid.uuid4().hex[:8]
    label = {"stt-load": run_id}
    name = f"stt-load-{run_id}"
    tui = Session(name, [sys.executable, str(LAUNCHER), str(describe(platform))], socket=name)
    results: dict[str, object] = {}
    try:
        wait(
            lambda: (
                pane_state(tui.screen(), "prod", "traefik") == "running"
                and "No operation running" in tui.screen()
            ),
            "both panes populated",
            60,
        )
        pid = tui.pid()
        dockerd = dockerd_pid()
        terminal = scratch / "terminal.out"
        terminal.touch()
        tui.pipe_to(terminal)

        def window(length: float) -> tuple[float, float, float]:
            """CPU of the TUI and of dockerd (share of one core), terminal bytes per second."""
            ours0, engine0 = ticks(pid), ticks(dockerd) if dockerd else 0
            bytes0, started = terminal.stat().st_size, time.monotonic()
            time.sleep(length)
            took = time.monotonic() - started
            ours = (ticks(pid) - ours0) / TICK / took
            engine_cpu = ((ticks(dockerd) - engine0) / TICK / took) if dockerd else 0.0
            return ours, engine_cpu, (terminal.stat().st_size - bytes0) / took

        time.sleep(2)  # let the first verification of backups and the checks finish
        results["idle"] = window(min(10.0, seconds))

        made = time.monotonic()
        crowd = [
            client.containers.create(IMAGE, network_mode="none", labels=label)
            for _ in range(containers)
        ]
        results["create_s"] = time.monotonic() - made
        churn = Churn(crowd)
        churn.start()
        # First the churn alone (nothing else happens: what it costs the TUI), then the same
        # churn while the panes are probed (kill/start a stack container, open the help).
        results["churn"] = window(seconds / 2)
        agent = engine.service_container(client, platform.dev_project, "agent")
        assert agent is not None
        kills, starts, helps = [], [], []
        started = time.monotonic()
        while time.monotonic() - started < seconds / 2:
            began = time.monotonic()
            tui.keys("?")
            helps.append(_help_time(tui, began))
            tui.keys("Escape")
            wait(lambda: "Esc closes this help" not in tui.screen(), "back to the panes", 10)
            agent.kill()
            kills.append(
                wait(
                    lambda: pane_state(tui.screen(), "dev", "agent") not in ("running", None),
                    "kill shown",
                    10,
                )
            )
            agent.start()
            starts.append(
                wait(
                    lambda: pane_state(tui.screen(), "dev", "agent") == "running", "start shown", 10
                )
            )
        churn_seconds = time.monotonic() - started + seconds / 2
        churn.stop()
        results["events_per_s"] = churn.done / churn_seconds
        results["kills"], results["starts"], results["helps"] = kills, starts, helps

        screen = tui.screen()
        wrong = []
        for env in (platform.dev, platform.prod):
            for container in engine.project_containers(client, env.project):
                service = container.labels[engine.SERVICE_LABEL]
                shown = pane_state(screen, env.name, service)
                if (shown or "").lower() != container.status:
                    wrong.append(f"{env.name} {service}: shown {shown}, is {container.status}")
        crowd_ids = {c.id[:12] for c in crowd}
        results["wrong"] = wrong + [f"unrelated {i} on screen" for i in crowd_ids if i in screen]
        results["containers"] = containers
    finally:
        tui.close()
        for container in client.containers.list(all=True, filters={"label": f"stt-load={run_id}"}):
            container.remove(force=True)
    return results


def _help_time(tui: Session, began: float) -> float:
    wait(lambda: "Esc closes this help" in tui.screen(), "help drawn", 10)
    return time.monotonic() - began


# --- backup of a large database ----------------------------------------------------------------


BACKUP_CHILD = """
import sys
from pathlib import Path
from stack_tui.core.environments import Platform
from stack_tui.ops.backup import backup
p = Platform(root=Path(sys.argv[1]), dev_project=sys.argv[2], prod_project=sys.argv[3],
             data_dir=Path(sys.argv[4]), env_file=Path(sys.argv[5]), compose_dir=Path(sys.argv[6]))
print("ready", flush=True)
sys.stdin.readline()
for event in backup(p, p.dev, keep=1000):
    pass
print(event.ok, event.summary, flush=True)
"""


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure_big_backup(platform: Platform, gb: float) -> dict[str, object]:
    filled = time.monotonic()
    psql(platform, "dev", "CREATE TABLE IF NOT EXISTS load (id bigint PRIMARY KEY, payload text)")
    size, start, batch = 0, 0, 1_000_000
    while size < gb * 1e9:
        psql(platform, "dev", FILL.format(first=start + 1, last=start + batch))
        start += batch
        size = int(psql(platform, "dev", "SELECT pg_database_size(current_database())"))
    fill_s = time.monotonic() - filled
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            BACKUP_CHILD,
            str(platform.root),
            platform.dev_project,
            platform.prod_project,
            str(platform.data),
            str(platform.dotenv),
            str(platform.compose),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline().strip() == "ready"
    after_imports = status_kb(child.pid, "VmRSS")
    samples: list[tuple[float, int]] = []
    began = time.monotonic()
    child.stdin.write("go\n")
    child.stdin.flush()
    peak = 0
    while child.poll() is None:
        try:
            rss = status_kb(child.pid, "VmRSS")
            peak = max(peak, status_kb(child.pid, "VmHWM"))
        except (OSError, ValueError):
            break
        samples.append((time.monotonic() - began, rss))
        time.sleep(0.05)
    took = time.monotonic() - began
    said = child.stdout.read().strip()
    assert said.startswith("True"), said
    rss = [kb for _, kb in samples]
    quarter = max(1, len(rss) // 4)
    return {
        "db_bytes": size,
        "fill_s": fill_s,
        "seconds": took,
        "summary": said,
        "after_imports_mb": after_imports / 1024,
        "peak_mb": peak / 1024,
        "rss_quarters_mb": [
            statistics.mean(rss[i : i + quarter]) / 1024 for i in range(0, quarter * 4, quarter)
        ]
        if rss
        else [],
    }


# --- report -------------------------------------------------------------------------------------


def report(
    about: str,
    options: argparse.Namespace,
    load: dict[str, object] | None,
    big: dict[str, object] | None,
) -> list[str]:
    lines = [
        f"Measured {datetime.now():%Y-%m-%d %H:%M} on {about}.",
        "",
        "Reproduce: `.venv/bin/python bench/load_containers.py --write-doc` (here with "
        f"`--containers {options.containers} --seconds {options.seconds:g} "
        f"--gb {options.gb:g}`).",
        "",
    ]
    if load is not None:
        idle, churn = load["idle"], load["churn"]
        kills, starts, helps = load["kills"], load["starts"], load["helps"]
        assert isinstance(idle, tuple) and isinstance(churn, tuple)
        assert isinstance(kills, list) and isinstance(starts, list) and isinstance(helps, list)

        def ms(values: list[float]) -> str:
            return (
                f"{statistics.median(values) * 1000:.0f} ms median, "
                f"{max(values) * 1000:.0f} ms worst (n={len(values)})"
            )

        wrong = load["wrong"]
        lines += [
            "### The TUI with unrelated containers churning",
            "",
            f"Both environments deployed; the real TUI in a 120x40 tmux terminal; "
            f"{load['containers']} unrelated containers created ({load['create_s']:.0f} s), then "
            f"started and killed by four threads for {options.seconds:g} s "
            f"({load['events_per_s']:.1f} starts/kills per second, each one several engine "
            "events). CPU as a share of one core.",
            "",
            f"| measure | idle ({min(10.0, options.seconds):g} s, nothing changing) "
            f"| churn alone ({options.seconds / 2:g} s) |",
            "|---|---|---|",
            f"| TUI process tree CPU | {idle[0] * 100:.2f} % | {churn[0] * 100:.2f} % |",
            f"| dockerd CPU (for scale) | {idle[1] * 100:.2f} % | {churn[1] * 100:.2f} % |",
            f"| bytes written to the terminal per second | {idle[2]:.0f} | {churn[2]:.0f} |",
            "",
            f"Then, the churn going on for another {options.seconds / 2:g} s:",
            "",
            "| probe | result |",
            "|---|---|",
            f"| dev agent killed (`docker kill`): shown in its pane after | {ms(kills)} |",
            f"| dev agent started again: shown in its pane after | {ms(starts)} |",
            f"| `?` pressed: help screen drawn after | {ms(helps)} |",
            "| pane states differing from the engine at the end, unrelated containers shown "
            f"| {len(wrong)}{': ' + '; '.join(wrong) if wrong else ''} |",  # type: ignore[arg-type]
            "",
            "Times are read from the terminal with `capture-pane` polled every 10 ms, so "
            "they include up to one poll. The subscription asks the engine only for container "
            "and volume lifecycle events and drops other projects' before any work; an "
            "unrelated container's start or kill costs the TUI a JSON decode and a dict "
            "lookup, and draws nothing.",
            "",
        ]
    if big is not None:
        quarters = big["rss_quarters_mb"]
        assert isinstance(quarters, list)
        lines += [
            "### Backup of a large database",
            "",
            f"dev's database filled to {int(big['db_bytes']) / 1e9:.2f} GB "  # type: ignore[call-overload]
            f"(`pg_database_size`, filled in {big['fill_s']:.0f} s), then our backup operation "
            "(lock, event log, audit, pg_dump through docker-py's exec stream, gzip level 1, "
            "fsync, full verification, rename) in a child process, its memory sampled every "
            "50 ms.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| result | {big['summary'].removeprefix('True ')} |",  # type: ignore[union-attr]
            f"| wall time | {big['seconds']:.1f} s |",
            f"| RSS after imports, before the dump | {big['after_imports_mb']:.0f} MB |",
            "| mean RSS in each quarter of the run | "
            + ", ".join(f"{q:.0f} MB" for q in quarters)
            + " |",
            f"| peak RSS (VmHWM) | {big['peak_mb']:.0f} MB |",
            "",
            "Memory is flat: the peak is within a few MB of the size after imports, as for "
            "the 20 MB and 200 MB databases in the section above.",
            "",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-backup", action="store_true")
    parser.add_argument("--write-doc", action="store_true")
    options = parser.parse_args()
    engine_or_skip_cli()
    about = machine()
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"stt-load-{uuid.uuid4().hex[:8]}"
    scratch.mkdir(parents=True)
    platform = make_platform(scratch)
    load = big = None
    try:
        for name in ("dev", "prod"):
            run_ok(deploy(platform, platform.env(name), accept_new_volumes=True, wait_timeout=120))
        if not options.skip_load:
            load = measure_load(platform, options.containers, options.seconds, scratch)
            print(load)
        if not options.skip_backup:
            big = measure_big_backup(platform, options.gb)
            print(big)
    finally:
        destroy(platform)
        subprocess.run(["rm", "-rf", str(scratch)], check=False)
    lines = report(about, options, load, big)
    print("\n".join(lines))
    if options.write_doc:
        common.write_doc(SECTION, lines)


def engine_or_skip_cli() -> None:
    try:
        engine_or_skip()
    except BaseException as err:  # pytest.skip outside pytest
        sys.exit(f"load_containers: {err}")


if __name__ == "__main__":
    main()
