"""CPU time from interpreter start to the first paint: the TUI with both panes populated
(fixed data, headless) against the smallest Textual app (one Static) and the TUI as it was
before this branch ("today"), side by side.

    .venv/bin/python bench/tui_first_paint.py [--rounds 15] [--today REV] [--write-doc]
    .venv/bin/python bench/tui_first_paint.py --instructions [--today REV] [--write-doc]

CPU time (not wall time) so that a busy shared host does not decide the result: it is
the work each launch does, whatever else runs. Each round starts both in fresh
interpreters, in alternating order. The TUI's data are fixed (built in the probe, no
engine): what is measured is Python, the imports, Textual and our first frame.
`--instructions` counts instructions instead (valgrind callgrind): deterministic on a busy
host, imports and first frame apart. `--write-doc` replaces the "TUI first paint (CPU)" or
"(instructions)" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import common

SECTION = "## TUI first paint (CPU)"
COUNTED_SECTION = "## TUI first paint (instructions)"
SIZE = (120, 40)

#: Run in a fresh interpreter: print the CPU seconds used when the first frame is painted.
PROBE = {
    "floor": """
import time
from textual.app import App
from textual.widgets import Static
IMPORTED

class Floor(App):
    def compose(self):
        yield Static("floor")

    def on_mount(self):
        self.call_after_refresh(lambda: painted(self))

app = Floor()
app.run(headless=True, size=SIZE)
print(app.return_value)
""",
    # Fixed data built here, not by tests/tui/fakes.py: that module imports what the tests
    # need (the checks, the deploy records, every event type), which the TUI's launch does not.
    "stack-tui": """
import gc, sys, time
gc.disable()  # as stack_tui.tui.run does
from datetime import datetime, timedelta
from pathlib import Path
from stack_tui.core.backups import BackupInfo
from stack_tui.core.environments import Platform
from stack_tui.ops.status import EnvStatus, ServiceStatus, VolumeStatus
from stack_tui.tui.app import StackApp
IMPORTED

NOW = datetime(2026, 2, 23, 17, 30)
platform = Platform(root=Path(REPO), data_dir=Path("/srv/platform/data"),
                    env_file=Path("/srv/platform/.env"), compose_dir=Path(REPO) / "compose")

def healthy(env):
    names = ["agent", "openwebui", "postgres", "qdrant"] + (["traefik"] if env.is_prod else [])
    started = (NOW - timedelta(hours=5)).timestamp()
    taken = [NOW.replace(hour=3, minute=0) - timedelta(days=day) for day in range(3)]
    return EnvStatus(
        env=env.name, project=env.project, domain=f"{env.name}.example.com",
        services=tuple(ServiceStatus(n, "running", "healthy", f"{n}:1", started) for n in names),
        volumes=tuple(VolumeStatus(v, True, env.project) for v in env.expected_volumes),
        backups=tuple(BackupInfo(env.backups_dir / f"{env.name}_{at:%Y%m%d_%H%M%S}.sql.gz",
                                 env.name, at, 6_100_000, verified=True) for at in taken),
        taken=NOW.timestamp())

class Fixed:
    live = False
    def __init__(self):
        self.platform = platform
        self.statuses = {env.name: healthy(env) for env in (platform.dev, platform.prod)}
    def now(self): return NOW.timestamp()
    def prefetched(self, env): return self.statuses[env.name]
    def status(self, env, *, reload=False): return self.statuses[env.name]
    def holder(self, env): return None
    def verify_backups(self, env): return False
    def checks(self): raise RuntimeError("not measured")

class Timed(StackApp):
    CSS_PATH = REPO + "/src/stack_tui/tui/app.tcss"

    def on_mount(self):
        self.call_after_refresh(lambda: painted(self))

app = Timed(Fixed())
app.run(headless=True, size=SIZE)
print(app.return_value)
""",
}


#: Ends the process when Textual's compositor has rendered its first whole screen: the
#: first frame itself, before what the app does once it is up (the footer's keys, timers).
RENDERED = """
from textual._compositor import Compositor
_render_full_update = Compositor.render_full_update
def _first_frame(self, *args, **kwargs):
    _render_full_update(self, *args, **kwargs)
    os._exit(0)
Compositor.render_full_update = _first_frame
"""


def probe_code(probe: str, tree: Path, stop: str = "") -> str:
    """The probe as code for `python -c`. `stop`: "" prints the CPU seconds at the first
    paint; "imports" ends the process right after the probe's imports, "rendered" when the
    first screen is rendered, "paint" where the CPU probe reads its clock (os._exit: no
    teardown counted)."""
    painted = "os._exit(0)" if stop == "paint" else "app.exit(time.process_time())"
    prelude = (
        f"import os, time\nREPO = {str(tree)!r}\nSIZE = {SIZE!r}\n"
        f"def painted(app):\n    {painted}\n"
    )
    imported = {"imports": "os._exit(0)", "rendered": RENDERED}.get(stop, "")
    return prelude + PROBE[probe].replace("IMPORTED", imported)


def environment(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree / "src")}


def cpu_to_first_paint(probe: str, tree: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", probe_code(probe, tree)],
        capture_output=True,
        text=True,
        check=True,
        env=environment(tree),
    )
    return float(done.stdout.strip().splitlines()[-1])


def instructions(probe: str, tree: Path, stop: str) -> int:
    """Instructions executed (valgrind callgrind's total Ir) from the interpreter's start to
    `stop`: deterministic, whatever else runs on the host (hash seed fixed)."""
    with tempfile.TemporaryDirectory(prefix="stack-tui-callgrind-") as scratch:
        out = Path(scratch) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                probe_code(probe, tree, stop),
            ],
            capture_output=True,
            check=True,
            env={**environment(tree), "PYTHONHASHSEED": "0"},
        )
        totals = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    assert totals, "callgrind wrote no total"
    return int(totals.group(1))


def today_tree(rev: str) -> Path:
    """The tree at `rev` (src and tests), for PYTHONPATH."""
    target = Path(tempfile.mkdtemp(prefix="stack-tui-today-"))
    archive = subprocess.run(
        ["git", "-C", str(common.REPO), "archive", rev, "src", "tests"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def counted(runs: dict[str, tuple[str, Path]], rev: str) -> list[str]:
    """The instruction-count table: imports, first frame and the whole launch of each."""
    stops = ("imports", "rendered", "paint")
    found = {
        ui: {stop: instructions(probe, tree, stop) for stop in stops}
        for ui, (probe, tree) in runs.items()
    }
    floor = found["floor"]

    def m(count: int) -> str:
        return f"{count / 1e6:,.0f} M"

    rows = []
    for ui, title in (
        ("stack-tui", "stack-tui"),
        ("today", f"today ({rev[:7]})"),
        ("floor", "textual floor (one Static)"),
    ):
        at = found[ui]
        bold = "**" if ui == "stack-tui" else ""
        rows.append(
            f"| {title} | {m(at['imports'])} | {m(at['rendered'] - at['imports'])} "
            f"| {m(at['rendered'])}: {bold}{at['rendered'] / floor['rendered']:.2f}x{bold} "
            f"| {m(at['paint'])}: {bold}{at['paint'] / floor['paint']:.2f}x{bold} |"
        )
    return [
        f"`bench/tui_first_paint.py --instructions`, {datetime.now():%Y-%m-%d}, "
        f"{common.cpu_model()}, Python {sys.version.split()[0]}: instructions executed "
        "(valgrind callgrind, total Ir; PYTHONHASHSEED=0) by a fresh interpreter running the "
        f"probes of the CPU table above (headless at {SIZE[0]}x{SIZE[1]}, fixed data), each "
        "ended (os._exit) at three points: after the probe's imports; when Textual's "
        "compositor has rendered the first whole screen (the first frame: both panes "
        "populated); and where the CPU probe reads its clock (an after-refresh callback "
        "from the app's mount, which also runs what the app does right after its first "
        "frame: the real footer replacing the first frame's, a second screen update). "
        "Deterministic: one "
        "run each; ratios to the floor at the same point.",
        "",
        "| launch | imports | first frame | to the first frame | to the CPU probe's clock |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"1.25x the floor is {m(int(floor['rendered'] * 1.25))} to the first frame, "
        f"{m(int(floor['paint'] * 1.25))} to the CPU probe's clock.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--today", default="", help="the revision to compare with (default: merge-base with main)"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions (valgrind callgrind, one run each) instead of CPU time",
    )
    parser.add_argument("--write-doc", action="store_true")
    options = parser.parse_args()
    rev = common.baseline_rev(options.today)
    runs = {
        "stack-tui": ("stack-tui", common.REPO),
        "today": ("stack-tui", today_tree(rev)),
        "floor": ("floor", common.REPO),
    }
    common.compile_bytecode(*{tree / "src" for _, tree in runs.values()})
    if options.instructions:
        lines = counted(runs, rev)
        print("\n".join(lines))
        if options.write_doc:
            common.write_doc(COUNTED_SECTION, lines)
        return
    found: dict[str, list[float]] = {ui: [] for ui in runs}
    names = list(runs)
    for number in range(options.rounds):
        for ui in names[number % 3 :] + names[: number % 3]:
            found[ui].append(cpu_to_first_paint(*runs[ui]))
        time.sleep(0.2)
    ours, today, floor = found["stack-tui"], found["today"], found["floor"]
    per_round = [mine / base for mine, base in zip(ours, floor, strict=True)]
    today_rounds = [then / base for then, base in zip(today, floor, strict=True)]
    median = statistics.median

    def ms(values: list[float]) -> str:
        return f"{median(values) * 1000:.0f} ms [{', '.join(f'{v * 1000:.0f}' for v in values)}]"

    lines = [
        f"`bench/tui_first_paint.py --rounds {options.rounds}`, {datetime.now():%Y-%m-%d}, "
        f"{common.cpu_model()}; CPU seconds of a fresh interpreter from its start to the "
        f"first painted frame, headless at {SIZE[0]}x{SIZE[1]}, the TUI with both panes "
        'populated from fixed data (no engine); "today" is the TUI '
        f"at {rev[:7]}, before this branch. Medians; every round in brackets (ms).",
        "",
        "| measure | stack-tui | today | textual floor (one Static) | ratio to the floor "
        "(of medians; median per round) | target |",
        "|---|---|---|---|---|---|",
        f"| CPU to the first frame | {ms(ours)} | {ms(today)} | {ms(floor)} "
        f"| **{median(ours) / median(floor):.2f}x**; {median(per_round):.2f}x "
        f"(today {median(today) / median(floor):.2f}x; {median(today_rounds):.2f}x) "
        "| <= 1.25x |",
        "",
        "Every measured tree is byte-compiled first (`compileall`), as Textual in the venv "
        "is: this host sets PYTHONDONTWRITEBYTECODE, under which each launch used to compile "
        "our modules from source again (about 60 ms, counted against us only).",
        "",
        "Where the difference to the floor goes, counted in instructions (deterministic "
        'where CPU time on this shared host is not): the section "TUI first paint '
        '(instructions)" (`--instructions`).',
    ]
    print("\n".join(lines))
    if options.write_doc:
        common.write_doc(SECTION, lines)


if __name__ == "__main__":
    main()
