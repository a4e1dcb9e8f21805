"""The panes' first frame in one widget.

A pane is a scrolling container with a border, a dozen Statics and two DataTables;
mounting, styling, laying out and drawing those widgets layer over layer, line by line,
was most of the launch's first frame (DataTable alone costs more to import and mount
than the whole smallest Textual app paints). This widget draws both panes, cell for cell
and style for style, with the Line API: their borders and titles, the same texts through
the same visuals, the tables' cells, cursor, header and scrollbar as DataTable renders
them, the styles from component classes declared like the real widgets' CSS. The main
screen shows it for the first frame and puts the real panes in its place right after
(tests/tui/test_first_frame.py compares the two screens).

It draws what the panes show at launch; what it cannot draw (a problem box, a dimmed
stale table, resource use, a services table taller than its box, a pane taller than the
terminal) makes the main screen mount the real panes at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import ceil
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style as RichStyle
from rich.text import Text
from textual.color import Color
from textual.scrollbar import ScrollBarRender
from textual.strip import Strip
from textual.style import Style
from textual.visual import Visual, visualize
from textual.widget import Widget

from stack_tui.tui.widgets.cells import Row

if TYPE_CHECKING:
    from stack_tui.tui.widgets.env_pane import EnvPane

#: At most this many lines tall (app.tcss: `EnvPane DataTable { max-height: 12 }`).
TABLE_MAX_HEIGHT = 12
#: The backups table's least height (app.tcss: `EnvPane #backups { min-height: 4 }`).
BACKUPS_MIN_HEIGHT = 4
#: DataTable's vertical scrollbar (Textual's default `scrollbar-size-vertical`).
TABLE_SCROLLBAR = 2
#: A pane's border (app.tcss: dev `round`, prod `heavy`) as Textual draws it: corners,
#: the top and bottom line, the sides.
BORDERS = {False: ("╭", "─", "╮", "│", "╰", "╯"), True: ("┏", "━", "┓", "┃", "┗", "┛")}


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


class PanesSnapshot(Widget):
    """Both panes (one on a narrow terminal), drawn line by line (see the module's
    docstring). It reads each pane's content, title and classes from the EnvPane objects,
    which are not mounted yet; `refresh()` after a change."""

    COMPONENT_CLASSES = {
        "panes-snapshot--dev-border",
        "panes-snapshot--prod-border",
        "panes-snapshot--banner",
        "panes-snapshot--prod-banner",
        "panes-snapshot--section",
        "panes-snapshot--table",
        "panes-snapshot--header",
        "panes-snapshot--cursor",
    }
    # The same declarations as app.tcss's rules for the panes and their widgets and
    # DataTable's DEFAULT_CSS (the header, the unfocused cursor): the same styles, resolved
    # the same way.
    DEFAULT_CSS = """
    PanesSnapshot {
        height: 1fr;
        & > .panes-snapshot--dev-border { color: $primary; }
        & > .panes-snapshot--prod-border { color: $error; }
        & > .panes-snapshot--banner { background: $primary-muted; }
        & > .panes-snapshot--prod-banner {
            background: $error;
            color: $text;
            text-style: bold;
        }
        & > .panes-snapshot--section { color: $text-muted; text-style: bold; }
        & > .panes-snapshot--table { background: $surface; color: $foreground; }
        & > .panes-snapshot--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .panes-snapshot--header { background: ansi_bright_blue; color: ansi_default; }
        & > .panes-snapshot--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    def __init__(self, panes: Sequence[EnvPane], on_overflow: Callable[[], None]) -> None:
        super().__init__(id="panes-snapshot")
        self.panes = panes
        #: Called when a pane's lines do not fit its box (only the real pane scrolls).
        self._on_overflow = on_overflow
        self._lines: tuple[tuple[object, ...], list[Strip]] | None = None

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        lines = self._screen_lines(width, height)
        return lines[y] if y < len(lines) else Strip.blank(width, self.rich_style)

    def _screen_lines(self, width: int, height: int) -> list[Strip]:
        """Every line of the panes' area: side by side as a Horizontal of two `1fr` panes
        lays them out, or only the current one on a narrow terminal."""
        narrow = self.screen.has_class("-narrow")
        shown = [pane for pane in self.panes if not narrow or pane.has_class("-current")]
        key = (width, height, narrow, *((pane.env.name, pane.content) for pane in shown))
        if self._lines is not None and self._lines[0] == key:
            return self._lines[1]
        if len(shown) == 1:
            boxes = [self._box(shown[0], width, height, narrow)]
        else:  # 1fr each, as Textual rounds them: the first gets the odd cell's floor
            boxes = [
                self._box(shown[0], width // 2, height, narrow),
                self._box(shown[1], width - width // 2, height, narrow),
            ]
        lines = [Strip.join(row) for row in zip(*boxes, strict=True)]
        self._lines = (key, lines)
        return lines

    def _box(self, pane: EnvPane, width: int, height: int, narrow: bool) -> list[Strip]:
        """One pane: its border with the title on the top line, a cell of padding each side
        (app.tcss: `EnvPane { padding: 0 1 }`), its lines inside."""
        prod = pane.env.is_prod
        top_left, across, top_right, side, bottom_left, bottom_right = BORDERS[prod]
        base, own = self.background_colors
        background = base + own
        color = self.get_component_styles(f"panes-snapshot--{pane.env.name}-border").color
        border = RichStyle.from_color((background + color).rich_color, background.rich_color)
        pad = Segment(" ", RichStyle.from_color(bgcolor=background.rich_color))
        title = f" {pane.border_title} "
        fill = width - 3 - cell_len(title)
        top = Strip(
            [
                Segment(top_left + across, border),
                Segment(title, border + RichStyle(bold=True)),
                Segment(across * fill + top_right, border),
            ]
        )
        inner = self._pane_lines(pane.content, prod, width - 4, height - 2, narrow)
        if len(inner) > height - 2:
            self.call_later(self._on_overflow)
        inner += [self._blank(width - 4)] * (height - 2 - len(inner))
        middle = [
            Strip([Segment(side, border), pad, *line, pad, Segment(side, border)])
            for line in inner[: height - 2]
        ]
        bottom = Strip([Segment(bottom_left + across * (width - 2) + bottom_right, border)])
        return [top, *middle, bottom]

    def _pane_lines(
        self, content: PaneContent, prod: bool, width: int, room: int, narrow: bool
    ) -> list[Strip]:
        """A pane's lines at this width, in a pane `room` lines tall (the backups table
        takes what the others leave, as its `height: 1fr` does)."""
        gap = [] if narrow else [self._blank(width)]
        banner = "panes-snapshot--prod-banner" if prod else "panes-snapshot--banner"
        blocks: list[list[Strip]] = [self._text(content.banner, width, banner)]

        def section(title: str) -> None:
            blocks.append(gap + self._text(title, width, "panes-snapshot--section"))

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
        return [line for block in blocks for line in block]

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
        header = self._table_style("panes-snapshot--header")
        cursor = self._table_style("panes-snapshot--cursor")
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
        table = self.get_component_styles("panes-snapshot--table")
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
