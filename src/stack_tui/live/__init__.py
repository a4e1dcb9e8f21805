"""The TUI's live model, without a widget: what both environments look like now, the
operations running or followed, the checks, and the plumbing that keeps them current
(engine events, data-file changes, status reads, operation drivers).

No Textual import (tests/tui/test_tui_layers.py): the app owns one `Session`, gives it a
`Host` (timers, threads, a thread-safe call into the UI, a question dialog) and
republishes its `Change`s to the screens, which only render.
"""
