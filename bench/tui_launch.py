"""Open the TUI on a platform described by a JSON file (bench/tui_bench.py's launcher).

`stack-tui` opens the platform's real projects; the benchmark needs its own test
platform, so this does what the console script does with another Platform, and
imports nothing else (launch time is what is measured).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from stack_tui.core.environments import Platform
from stack_tui.tui import run

if __name__ == "__main__":
    spec = json.loads(Path(sys.argv[1]).read_text())
    platform = Platform(
        root=Path(spec["root"]),
        dev_project=spec["dev"],
        prod_project=spec["prod"],
        data_dir=Path(spec["data"]),
        env_file=Path(spec["env"]),
        compose_dir=Path(spec["compose"]),
    )
    sys.exit(run(platform=platform))
