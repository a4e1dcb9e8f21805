"""`./stack` on a test platform: `python tests/platform_main.py SPEC.json [ARGS...]` runs the
CLI (no ARGS: the TUI) with the Platform the JSON file describes (`platform_spec`), so a
terminal test drives the real front end without touching the platform's real projects."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from stack_tui.cli import main
from stack_tui.core.environments import Platform


def platform_spec(platform: Platform, path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "root": str(platform.root),
                "dev": platform.dev_project,
                "prod": platform.prod_project,
                "data": str(platform.data),
                "env_file": str(platform.dotenv),
                "compose": str(platform.compose),
            }
        )
    )
    return path


if __name__ == "__main__":
    spec = json.loads(Path(sys.argv[1]).read_text())
    platform = Platform(
        root=Path(spec["root"]),
        dev_project=spec["dev"],
        prod_project=spec["prod"],
        data_dir=Path(spec["data"]),
        env_file=Path(spec["env_file"]),
        compose_dir=Path(spec["compose"]),
    )
    sys.exit(main(sys.argv[2:], platform=platform))
