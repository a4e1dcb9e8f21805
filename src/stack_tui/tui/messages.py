"""Messages from thread workers to the UI (post_message is thread-safe), and the app's
signal of live-session changes."""

from __future__ import annotations

from typing import cast

from textual.dom import DOMNode
from textual.signal import Signal

from stack_tui.live.session import Change


def session_changes(node: DOMNode) -> Signal[Change]:
    """The app's `session_changed` signal (StackApp publishes every Change of its session)."""
    return cast("Signal[Change]", node.app.session_changed)  # type: ignore[attr-defined]
