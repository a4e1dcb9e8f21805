"""TUI tests: clock times on screen are local time, so pin the zone for stable snapshots."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

os.environ["TZ"] = "UTC"
time.tzset()
