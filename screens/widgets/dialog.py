"""The shared shape of the modals: one bordered box, centred, never wider or taller than
the terminal (80x24 included). A dialog sets only its box's width.

The newest toast (notification) shows at the top of a modal, never on its box: the box is
laid out in the rows below it, so what it says stays readable while a toast shows."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen

ResultType = TypeVar("ResultType")


class Dialog(ModalScreen[ResultType]):
    DEFAULT_CSS = """
    Dialog {
        align: center middle;
    }
    Dialog > * {
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    Dialog > ToastRack {
        layer: default;  /* Textual's own layer floats it over the box; on the box's, a dock makes room */
        dock: top;
        align: right top;
        margin: 0;
        max-height: 5;  /* the box keeps the rest: 19 rows at 80x24 */
        border: none;
        padding: 0;
    }
    Dialog ToastHolder {
        display: none;  /* the newest only: the screen underneath shows them all once the modal closes */
    }
    Dialog ToastHolder:last-child {
        display: block;
    }
    Dialog Toast {
        max-width: 100%;
    }
    """
