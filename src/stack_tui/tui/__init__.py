"""The TUI: `run()` is what `stack-tui` and `./stack` with no arguments call."""

from __future__ import annotations

import gc

from stack_tui.core import diagnostics
from stack_tui.core.environments import Platform


def run(read_only: bool = False, platform: Platform | None = None) -> int:
    """Open the TUI on the platform's two environments; returns the exit code."""
    # Startup only builds objects that live as long as the app: collecting garbage meanwhile
    # is wasted launch time. The main screen turns the collector back on once both panes show.
    gc.disable()
    from stack_tui.live.backend import LiveBackend

    platform = platform or Platform()
    diagnostics.log_to(platform.logs_dir)
    backend = LiveBackend(platform)
    backend.prefetch()  # both first snapshots load while Textual is imported
    from stack_tui.tui.app import StackApp

    app = StackApp(backend, read_only=read_only)
    app.run()
    return app.return_code or 0
