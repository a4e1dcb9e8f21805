"""A pane's first frame in one widget.

A pane is a dozen Statics and two DataTables; mounting, styling and laying out those
widgets was most of the launch's first frame (DataTable alone costs more to import and
mount than the whole smallest Textual app paints). This widget draws the same pane,
cell for cell and style for style, with the Line API: the same texts through the same
visuals, the tables' cells, cursor, header and scrollbar as DataTable renders them, the
styles from component classes declared like the real widgets' CSS. EnvPane shows it for the first
frame and puts the real widgets in its place right after (tests/tui/test_first_frame.py
compares the two screens).

It draws what a pane shows at launch; what it cannot draw (a problem box, a dimmed
stale table, resource use, a services table taller than its box) makes EnvPane mount
the real widgets at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style as RichStyle
from rich.text import Text
from textual.color import Color
from textual.geometry import Size
from textual.scrollbar import ScrollBarRender
from textual.strip import Strip
from textual.style import Style
from textual.visual import Visual, visualize
from textual.widget import Widget

from stack_tui.tui.widgets.cells import Row

#: At most this many lines tall (app.tcss: `EnvPane DataTable { max-height: 12 }`).
TABLE_MAX_HEIGHT = 12
#: The backups table's least height (app.tcss: `EnvPane #backups { min-height: 4 }`).
BACKUPS_MIN_HEIGHT = 4
#: DataTable's vertical scrollbar (Textual's default `scrollbar-size-vertical`).
TABLE_SCROLLBAR = 2


@dataclass
class Table:
    """What a pane's table shows: its columns (key, title), rows and whether the cursor
    shows (on the first row: a table's cursor starts there)."""

    columns: tuple[tuple[str, str], ...]
    rows: Sequence[Row] = ()
    cursor: bool = False


@dataclass
class PaneContent:
    """Everything a pane shows, computed once from the live state (EnvPane.show), drawn
    by the snapshot or put into the real widgets."""

    banner: Text
    services_title: str
    services: Table
    volumes: Text | str
    backups_title: str
    backups: Table
    operation: Text
    problem: Text | None = None
    stale_services: bool = False
    restores: Text | None = None
    stale: Text | None = None
    offsite: Text | None = None
    resources: Text | None = None

    @property
    def drawable(self) -> bool:
        """Can the snapshot draw it exactly? (Else the real widgets show it.)"""
        return (
            self.problem is None
            and not self.stale_services
            and self.resources is None
            and len(self.services.rows) < TABLE_MAX_HEIGHT
        )


class PaneSnapshot(Widget):
    """The pane's content, drawn line by line (see the module's docstring)."""

    COMPONENT_CLASSES = {
        "pane-snapshot--banner",
        "pane-snapshot--section",
        "pane-snapshot--table",
        "pane-snapshot--header",
        "pane-snapshot--cursor",
    }
    # The same declarations as app.tcss's rules for the pane's widgets and DataTable's
    # DEFAULT_CSS (the header, the unfocused cursor): the same styles, resolved the same way.
    DEFAULT_CSS = """
    PaneSnapshot {
        height: auto;
        & > .pane-snapshot--banner { background: $primary-muted; }
        & > .pane-snapshot--section { color: $text-muted; text-style: bold; }
        & > .pane-snapshot--table { background: $surface; color: $foreground; }
        & > .pane-snapshot--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .pane-snapshot--header { background: ansi_bright_blue; color: ansi_default; }
        & > .pane-snapshot--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &.-prod > .pane-snapshot--banner {
            background: $error;
            color: $text;
            text-style: bold;
        }
    }
    """

    def __init__(self, content: PaneContent, *, prod: bool) -> None:
        super().__init__(classes="-prod" if prod else "")
        self.content = content
        self._lines: tuple[int, int, list[Strip]] | None = None

    def show(self, content: PaneContent) -> None:
        self.content = content
        self._lines = None
        self.refresh(layout=True)

    # --- layout -----------------------------------------------------------------------------

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._pane_lines(width, container.height))

    def render_line(self, y: int) -> Strip:
        width, _ = self.size
        lines = self._pane_lines(width, self.container_size.height)
        return lines[y] if y < len(lines) else Strip.blank(width, self.rich_style)

    def _pane_lines(self, width: int, room: int) -> list[Strip]:
        """The pane's lines at this width, in a pane `room` lines tall (the backups table
        takes what the others leave, as its `height: 1fr` does)."""
        if self._lines is not None and self._lines[:2] == (width, room):
            return self._lines[2]
        content, narrow = self.content, self.screen.has_class("-narrow")
        gap = [] if narrow else [self._blank(width)]
        blocks: list[list[Strip]] = [self._text(content.banner, width, "pane-snapshot--banner")]

        def section(title: str) -> None:
            blocks.append(gap + self._text(title, width, "pane-snapshot--section"))

        section(content.services_title)
        if content.services.rows:
            blocks.append(self._table(content.services, width, None))
        section("Volumes")
        blocks.append(self._text(content.volumes, width))
        if content.restores:
            blocks.append(self._text(content.restores, width))
        section(content.backups_title)
        for line in (content.stale, content.offsite):
            if line:
                blocks.append(self._text(line, width))
        backups_at = len(blocks)
        section("Operation")
        blocks.append(self._text(content.operation, width))
        if content.backups.rows:
            others = sum(len(block) for block in blocks)
            height = min(max(BACKUPS_MIN_HEIGHT, room - others), room)
            blocks.insert(backups_at, self._table(content.backups, width, height))
        lines = [line for block in blocks for line in block]
        self._lines = (width, room, lines)
        return lines

    # --- drawing ----------------------------------------------------------------------------

    def _blank(self, width: int) -> Strip:
        return Strip.blank(width, self._inner())

    def _inner(self, component: str = "") -> RichStyle:
        """The background a widget styled like `component` fills its lines with."""
        base, background = self.background_colors
        if component:
            styles = self.get_component_styles(component)
            if styles.has_rule("background"):
                background += styles.background.tint(styles.background_tint)
        return Style(background=base + background).rich_style

    def _text(self, text: Text | str, width: int, component: str = "") -> list[Strip]:
        """As a Static of that style shows it."""
        style = self.get_visual_style(component) if component else self.visual_style
        strips = Visual.to_strips(self, visualize(self, text), width, None, style)
        inner = self._inner(component)
        return [strip.adjust_cell_length(width, inner) for strip in strips]

    def _table(self, table: Table, width: int, height: int | None) -> list[Strip]:
        """As SyncTable (a DataTable: cell padding 1, row cursor, no zebra) shows it
        unfocused, scrolled to the top; `height`: its box (None: as tall as its rows)."""
        rows = [tuple((title, "") for _, title in table.columns), *(c for _, c in table.rows)]
        total = len(rows)
        height = total if height is None else height
        bar = TABLE_SCROLLBAR if total > height else 0
        inner_width = width - bar
        widths = [max(cell_len(row[index][0]) for row in rows) + 2 for index in range(len(rows[0]))]
        base = self._table_style()
        header = self._table_style("pane-snapshot--header")
        cursor = self._table_style("pane-snapshot--cursor")
        # DataTable's post style: the cursor's colours over the cells' own ("css" priority)
        cursor_post = RichStyle.from_color(cursor.color) + RichStyle.from_color(
            bgcolor=cursor.bgcolor
        )
        lines: list[Strip] = []
        for index, cells in enumerate(rows[:height]):
            if index == 0:
                pre, post = header, RichStyle()
            elif table.cursor and index == 1:
                pre, post = base + cursor, cursor_post
            else:
                pre, post = base, RichStyle()
            fill = pre + post
            segments: list[Segment] = []
            for (text, style), cell_width in zip(cells, widths, strict=True):
                # As DataTable renders a cell: Padding(cell, (0, 1)) under `pre`, over `post`
                segments += (
                    Segment(" ", fill),
                    Segment(text, pre + RichStyle.parse(style) + post if style else fill),
                    Segment(" " * (cell_width - 1 - cell_len(text)), fill),
                )
            segments.append(Segment(" " * max(0, inner_width - sum(widths)), pre))
            line = Strip(segments).crop(0, inner_width).adjust_cell_length(inner_width, base)
            lines.append(line.simplify())
        lines += [Strip.blank(inner_width, base)] * (height - len(lines))
        if bar:
            lines = [
                Strip.join([line, piece])
                for line, piece in zip(lines, self._scrollbar(total, height, base), strict=True)
            ]
        return lines

    def _table_style(self, component: str = "") -> RichStyle:
        """A DataTable's own style (background $surface over the pane's), with `component`
        over it as DataTable resolves its component classes."""
        base_background = self.background_colors[1]
        table = self.get_component_styles("pane-snapshot--table")
        background = base_background + table.background
        color = table.color
        style = RichStyle()
        style += table.text_style
        if component:
            styles = self.get_component_styles(component)
            if styles.has_rule("background"):
                background += styles.background
            if styles.has_rule("color"):
                color = styles.color
            style += styles.text_style
        return style + RichStyle.from_color((background + color).rich_color, background.rich_color)

    def _scrollbar(self, virtual: int, window: int, table: RichStyle) -> list[Strip]:
        """A DataTable's vertical scrollbar at the top, as Textual's ScrollBar draws it (over
        the table's own style)."""
        styles = self.styles
        background: Color = styles.scrollbar_background
        if background.a < 1:
            background = self.background_colors[0] + background
        color = background + styles.scrollbar_color
        renderable = ScrollBarRender(
            virtual_size=ceil(virtual),
            window_size=ceil(window) if window < virtual else 0,
            position=0,
            thickness=TABLE_SCROLLBAR,
            vertical=True,
            style=RichStyle.from_color(color.rich_color, background.rich_color),
        )
        console = self.app.console
        options = console.options.update_dimensions(TABLE_SCROLLBAR, window)
        return [
            Strip(line).apply_style(table) for line in console.render_lines(renderable, options)
        ]
