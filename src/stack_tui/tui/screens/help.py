"""`?`: every key of the screen it was opened from, built from its live bindings
(so read-only mode lists no mutating key, and the list never drifts from the code)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.table import Table
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

#: Textual's own screen defaults, which say nothing about this app.
IGNORED = frozenset({"focus_next", "focus_previous", "copy_text", "command_palette"})


@dataclass(frozen=True)
class KeyRow:
    keys: str
    description: str
    tooltip: str
    action: str
    node: DOMNode


def key_rows(screen: Screen[object]) -> list[KeyRow]:
    """The screen's and the app's enabled bindings, one row per action ("^r / R  Refresh").

    Widget-level bindings (table and log navigation) are left out: they are the
    same arrows and page keys everywhere, and the help says so in one line.
    """
    grouped: dict[str, KeyRow] = {}
    for active in screen.active_bindings.values():
        binding, node = active.binding, active.node
        action = binding.action.rsplit(".", 1)[-1]
        if (
            not binding.description
            or not active.enabled
            or action in IGNORED
            or not isinstance(node, Screen | App)
        ):
            continue
        key = screen.app.get_key_display(binding)
        row = grouped.get(action)
        if row is None:
            grouped[action] = KeyRow(
                key, binding.description, binding.tooltip, binding.action, node
            )
        elif key not in row.keys.split(" / "):
            grouped[action] = replace(
                row, keys=f"{row.keys} / {key}", tooltip=row.tooltip or binding.tooltip
            )
    return list(grouped.values())


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "../screens.tcss"  # loaded when first shown, not at launch
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close help")]

    def __init__(self, rows: list[KeyRow], read_only: bool) -> None:
        super().__init__()
        self.rows = rows
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Keys", id="title")
            with VerticalScroll(id="keys"):
                yield Static(self.table())
            note = (
                "READ-ONLY: no deploy, backup, restore or shell; psql is read-only."
                if self.read_only
                else "Every action works on the focused pane's environment (tab, 1, 2)."
            )
            yield Static(
                f"{note} Arrows, pgup/pgdn and home/end move in the focused table or log. "
                "Esc closes this help.",
                id="help-note",
            )

    def table(self) -> Table:
        """Keys on one line, what they do wrapped beside them: nothing cut at 80 columns."""
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column()
        for row in self.rows:
            table.add_row(row.keys, row.tooltip or row.description)
        table.add_row("^p", "Command palette: every action above, by name")
        return table

    def on_mount(self) -> None:
        self.query_one("#keys").focus()  # arrows scroll a list longer than the screen

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_keys)

    def fit_keys(self) -> None:
        """The list gets what the dialog's 90 % leaves beside its title and note, so that
        the note stays on screen and the list scrolls to its last row (80x24 included)."""
        dialog, keys = self.query_one("#dialog"), self.query_one("#keys")
        others = sum(
            child.outer_size.height + child.styles.margin.top + child.styles.margin.bottom
            for child in dialog.children
            if child is not keys
        )
        frame = dialog.styles.border.spacing.height + dialog.styles.padding.height
        keys.styles.max_height = max(3, int(self.size.height * 0.9) - frame - others)
