"""Hand the terminal to an interactive session (a shell, psql) and take it back.

The container is checked in a thread (it exists, it runs, which shell it has: engine round
trips the UI must not wait on); then, on the UI thread, `App.suspend()` gives the terminal
to `docker compose exec` and redraws everything when it exits.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import App, SuspendNotSupported

from stack_tui.core.console import Session
from stack_tui.core.environments import label
from stack_tui.core.errors import StackError
from stack_tui.live.backend import Backend


def attach(app: App[int], backend: Backend, prepare: Callable[[], Session], what: str) -> None:
    """Prepare the session in a worker, then run it with the TUI suspended. Until the
    terminal is handed over (a second or more: engine and Compose round trips), keys still
    reach the TUI: say at once that it is coming."""
    app.notify(f"Opening {what}…", timeout=3)

    def check() -> None:
        try:
            session = prepare()
        except StackError as err:
            app.call_from_thread(
                app.notify, f"{err.message}\n{err.hint}", title="Not opened", severity="error"
            )
            return
        app.call_from_thread(run, app, backend, session)

    app.run_worker(check, thread=True, group="attach", exit_on_error=False, name="attach")


def run(app: App[int], backend: Backend, session: Session) -> None:
    try:
        with app.suspend():
            code = backend.attach(session)
    except SuspendNotSupported:
        app.notify(
            "This terminal cannot be handed over (no suspend here).",
            title="Not opened",
            severity="error",
        )
        return
    except StackError as err:
        app.notify(f"{err.message}\n{err.hint}", title="Not opened", severity="error")
        return
    app.notify(f"{session.what} ended (exit status {code}).", title=label(session.env), timeout=4)
