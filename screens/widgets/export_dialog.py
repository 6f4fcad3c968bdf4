"""Export the events the Logs screen filters to a file: asks for the path (prefilled with a
new name in the exports folder), says what will be written, and stays open with the
engine's reason when it refuses (an existing file, a suffix other than .csv / .jsonl) so
the operator can fix the name. Enter exports, escape cancels."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Awaitable, Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from services.views import CommandResult

from .dialog import Dialog

log = logging.getLogger("tui_trader.screens")


class ExportDialog(Dialog[CommandResult | None]):
    """export(path) writes the file (the engine's export_events for the screen's filter);
    the dialog dismisses with its result on success, None on cancel. A relative path is
    taken from `folder`."""

    DEFAULT_CSS = """
    ExportDialog > Vertical {
        width: 76;
    }
    ExportDialog #path {
        margin: 1 0;
    }
    ExportDialog #hint {
        color: $text-muted;
    }
    ExportDialog #error {
        color: $error;
        text-style: bold;
        margin-top: 1;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="export.cancel"),
    ]

    def __init__(self, what: str, default: Path, folder: Path,
                 export: Callable[[Path], Awaitable[CommandResult]]) -> None:
        super().__init__()
        self.what = what
        self.default = default
        self.folder = folder
        self.export = export
        self.exporting = False

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Export events"
            yield Static(self.what, id="what", markup=False)
            yield Input(str(self.default), id="path")
            yield Static(f".csv writes a table, .jsonl one JSON object per line. A name without a folder goes "
                         f"to {self.folder}. enter exports · esc cancels", id="hint", markup=False)
            yield Static("", id="error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#error").display = False
        self.query_one("#path", Input).focus()

    @property
    def error(self) -> str:
        """The refusal on show ("" when none)."""
        error = self.query_one("#error", Static)
        return str(error.content) if error.display else ""

    def _show_error(self, message: str) -> None:
        error = self.query_one("#error", Static)
        error.update(f"✗ {message}" if message else "")
        error.display = bool(message)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show_error("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self._show_error("type the file to write, ending in .csv or .jsonl")
            return
        path = Path(text).expanduser()
        self._export(path if path.is_absolute() else self.folder / path)

    @work(exclusive=True, group="export")
    async def _export(self, path: Path) -> None:
        box = self.query_one("#path", Input)
        box.disabled = self.exporting = True
        try:
            result = await self.export(path)
        except Exception as exc:  # the engine answers with a CommandResult: anything else is a bug
            log.exception("event export failed")
            result = CommandResult.error(f"the export failed: {exc}")
        finally:
            box.disabled = self.exporting = False
        if result.ok:
            self.dismiss(result)
        else:
            self._show_error(result.message)
            box.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "cancel" and self.exporting)  # the file is being written: let it finish

    def action_cancel(self) -> None:
        self.dismiss(None)
