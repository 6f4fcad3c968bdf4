"""What every engine screen shares: the status bar, the footer, and rendering the newest
snapshot. The app renders only the visible screen; a screen catches up when it is shown."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Protocol, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer

from services.ports import EngineCommands
from services.views import EngineSnapshot

from .widgets.status_bar import StatusBar


class TraderHost(Protocol):
    """What the screens need from the app (tui_trader.app.TraderApp implements it)."""

    latest_snapshot: EngineSnapshot | None
    export_dir: Path
    """Where exports go unless the operator says otherwise (exports/ in the data directory)."""

    @property
    def engine(self) -> EngineCommands: ...

    def render_now(self) -> None:
        """Take a fresh snapshot from the engine and render the visible screen with it."""


class EngineScreen(Screen):
    # Toasts at the top right, under the status bar's two lines: at the bottom (Textual's
    # place) they would cover the highlighted row's detail panel above the footer. Under a
    # modal they hide: the modal shows its own, which these would double through its
    # dimmed background.
    DEFAULT_CSS = """
    EngineScreen ToastRack {
        dock: top;
        align: right top;
        margin: 2 0 0 0;
    }
    EngineScreen.-covered Toast {
        visibility: hidden;
    }
    EngineScreen Footer.-compact FooterLabel {
        margin: 0 1 0 0;  /* the compact footer runs a key group's label into the next key */
    }
    EngineScreen Footer.-compact FooterKey.-command-palette {
        margin-right: 0;  /* docked right, the compact keys' margin left the last column to a key cut under it */
        padding-right: 1;
    }
    """

    NAME: ClassVar[str] = ""
    """The screen's name in the status bar tabs."""

    BINDINGS = [
        Binding("z", "toggle_maximize", "Zoom", tooltip="Maximize the focused table to the whole screen; z or escape "
                "restores it", id="screen.maximize"),
    ]
    ALLOW_IN_MAXIMIZED_VIEW = "StatusBar, Footer"
    """A maximized table keeps the engine's vital signs above it and the keys below."""

    @classmethod
    def _merge_bindings(cls) -> BindingsMap:
        # The zoom key after the screen's own keys: where the footer runs out of room at 80
        # columns, it is the one cut (help lists it).
        bindings = super()._merge_bindings()
        bindings.key_to_bindings["z"] = bindings.key_to_bindings.pop("z")
        return bindings

    def __init__(self) -> None:
        super().__init__()
        self.shown: EngineSnapshot | None = None

    @property
    def host(self) -> TraderHost:
        return cast(TraderHost, self.app)

    @property
    def engine(self) -> EngineCommands:
        return self.host.engine

    def compose(self) -> ComposeResult:
        yield StatusBar(self.NAME)
        yield from self.compose_body()
        yield Footer(compact=True)  # at 80 columns every key of a screen fits, Quit included

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    def action_toggle_maximize(self) -> None:
        if self.maximized is not None:
            self.minimize()
        elif isinstance(self.focused, DataTable) and self.focused.is_on_screen:  # not a hidden one
            self.maximize(self.focused)
        else:
            self.notify("Nothing to zoom: move to a table first (tab)", severity="warning")

    def on_screen_suspend(self) -> None:
        self.add_class("-covered")

    def on_screen_resume(self) -> None:
        self.remove_class("-covered")
        self.catch_up()

    def catch_up(self) -> None:
        """Render the app's newest snapshot if this screen has not shown it yet."""
        snap = self.host.latest_snapshot
        if snap is not None and snap is not self.shown and self.is_mounted:
            with self.app.batch_update():
                self.show(snap)

    def show(self, snap: EngineSnapshot) -> None:
        bars = self.query(StatusBar)
        if not bars:
            return  # mounted but not composed yet: the next render or catch_up() shows it
        self.shown = snap
        bars.first().show(snap)
        self.render_snapshot(snap)

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        """Bring the screen's widgets up to date with `snap` (diffs, never a clear)."""
        raise NotImplementedError


def set_subtitle(widget: Widget, text: str) -> None:
    """Set a box's border subtitle if it changed (setting it repaints the box and all it holds)."""
    if widget.border_subtitle != text:
        widget.border_subtitle = text


def set_title(widget: Widget, text: str) -> None:
    """Set a box's border title if it changed (as set_subtitle)."""
    if widget.border_title != text:
        widget.border_title = text
