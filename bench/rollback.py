"""Rollback speed, side by side with a plain `docker compose up` of the same old image.

    .venv/bin/python bench/rollback.py [--rounds 7] [--write-doc]

Builds its own test platform (unique project names, a temporary data
directory; removed afterwards) and deploys dev with agent v1, then v3. Each
round starts from v3 and times, in alternating order:

- ours: the rollback operation back to before the v3 deploy (lock, event log,
  audit, record read, image checks, the confirmation answered, its own record,
  the pinned override, `compose up -d --wait --pull never`);
- baseline: what an operator would type without us, `docker compose -p P -f ...
  up -d --wait` with AGENT_IMAGE pointing at the v1 image (the same image ID).

Untimed between them: back to v3 (our deploy after our rollback, so that the
next rollback has a deploy to undo; a plain `up` after the baseline).
`--write-doc` replaces the "Rollback" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform as host
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from common import cpu_model, docker_version, run_ok, write_doc

from stack_tui.core import compose
from stack_tui.core.environments import Platform
from stack_tui.ops.deploy import deploy
from stack_tui.ops.rollback import rollback
from support import destroy, engine_or_skip, make_platform

SECTION = "## Rollback"
V1, V3 = "stack-tui-test/agent:1", "stack-tui-test/agent:3"
WAIT = "60"
MEANING = (
    "What ours does besides Compose's `up`: the lock, event log and audit line, reading the "
    "records, checking every needed image (one image list), two reads of the services' state "
    "(container summaries), its own record (written twice, fsynced) and the pinned override. "
    "Its `up` names only the services that moved (`--no-deps agent`), while the baseline's "
    "plain `up` looks at every service. The host was shared with other test runs (load "
    "average above): single rounds vary by 2x, the medians of alternating rounds are what to "
    "compare."
)


def set_agent(platform: Platform, image: str) -> None:
    path = platform.dotenv
    lines = [
        f"AGENT_IMAGE={image}" if line.startswith("AGENT_IMAGE=") else line
        for line in path.read_text().splitlines()
    ]
    path.write_text("\n".join(lines) + "\n")


def plain_up(platform: Platform, image: str) -> float:
    """`docker compose up -d --wait` of dev with AGENT_IMAGE=image; seconds taken."""
    env = platform.dev
    environ = {**compose.process_env(env), "AGENT_IMAGE": image}
    started = time.perf_counter()
    subprocess.run(
        compose.command(env, "up", "-d", "--wait", "--wait-timeout", WAIT),
        env=environ,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def ours(platform: Platform) -> float:
    started = time.perf_counter()
    run_ok(rollback(platform, platform.dev, wait_timeout=int(WAIT)))
    return time.perf_counter() - started


def redeploy_v3(platform: Platform) -> None:
    set_agent(platform, V3)
    run_ok(deploy(platform, platform.dev, wait_timeout=int(WAIT)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--write-doc", action="store_true")
    options = parser.parse_args()
    engine_or_skip()
    base = Path(tempfile.mkdtemp(prefix="stack-tui-bench-rollback-"))
    platform = make_platform(base)
    load_start = os.getloadavg()[0]
    times: dict[str, list[float]] = {"ours": [], "baseline": []}
    try:
        set_agent(platform, V1)
        run_ok(deploy(platform, platform.dev, accept_new_volumes=True, wait_timeout=int(WAIT)))
        redeploy_v3(platform)
        for round_ in range(options.rounds):
            order = ("ours", "baseline") if round_ % 2 == 0 else ("baseline", "ours")
            for which in order:
                if which == "ours":
                    times["ours"].append(ours(platform))
                    redeploy_v3(platform)
                else:
                    times["baseline"].append(plain_up(platform, V1))
                    plain_up(platform, V3)
            print(
                f"round {round_ + 1}: ours {times['ours'][-1]:.2f} s, "
                f"plain up {times['baseline'][-1]:.2f} s",
                flush=True,
            )
    finally:
        destroy(platform)
        shutil.rmtree(base, ignore_errors=True)
    report(times, options.rounds, load_start)
    if options.write_doc:
        write_doc(SECTION, report(times, options.rounds, load_start))


def report(times: dict[str, list[float]], rounds: int, load_start: float) -> list[str]:
    ours_median = statistics.median(times["ours"])
    base_median = statistics.median(times["baseline"])
    per_round = statistics.median(
        o / b for o, b in zip(times["ours"], times["baseline"], strict=True)
    )
    ratio = ours_median / base_median
    lines = [
        f"Measured {datetime.now():%Y-%m-%d %H:%M} on {os.cpu_count()} cores ({cpu_model()}), "
        f"Linux {host.release()}, Docker Engine {docker_version()}, Python "
        f"{host.python_version()}, load average at start {load_start:.2f}.",
        "",
        f"Reproduce: `.venv/bin/python bench/rollback.py --write-doc` (here `--rounds {rounds}`). "
        "Dev environment of a test platform; each round goes from agent v3 back to v1 "
        "(the same image ID both ways), ours and the baseline alternating first. "
        "Ratio = our seconds / baseline seconds (below 1: we are faster).",
        "",
        "| measure | ours: `stack rollback --dev` | baseline: plain `docker compose up -d --wait` "
        "of the old image | ratio of medians | median of per-round ratios | target |",
        "|---|---|---|---|---|---|",
        f"| median s | {ours_median:.2f} | {base_median:.2f} | **{ratio:.2f}x** | "
        f"**{per_round:.2f}x** | <= 1.1x |",
        "",
        MEANING,
        "",
        f"Spread of the {rounds} rounds: ours {min(times['ours']):.2f}-{max(times['ours']):.2f} s, "
        f"baseline {min(times['baseline']):.2f}-{max(times['baseline']):.2f} s; load average "
        f"{os.getloadavg()[0]:.2f} at the end.",
    ]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
