"""The confirmation every destructive action goes through: y confirms, n or escape cancels.

With a required `word` (exit everything) a keystroke is not enough: the operator types the
word and presses enter; Yes stays disabled until the word matches, and y or n only type."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from .dialog import Dialog


class ConfirmScreen(Dialog[bool]):
    DEFAULT_CSS = """
    ConfirmScreen > Vertical {
        width: 64;
        height: auto;  /* a Vertical's own 1fr ties with the Dialog's */
        border: thick $warning;
        padding: 1 2;
    }
    ConfirmScreen #question {
        width: 100%;
        margin-bottom: 1;
    }
    ConfirmScreen #word {
        margin-bottom: 1;
    }
    ConfirmScreen Horizontal {
        height: auto;
        align: right middle;
    }
    ConfirmScreen Button {
        margin-left: 2;
        min-width: 10;
    }
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
        Binding("escape", "answer(False)", "Cancel", id="confirm.cancel"),
    ]

    def __init__(self, question: str, title: str = "Confirm", word: str | None = None) -> None:
        super().__init__()
        self.question = question
        self.title_text = title
        self.word = word
        """The word the operator must type to confirm (None: y confirms)."""

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            question = self.question
            if self.word:
                question += f"\n\nType {self.word} and press enter to confirm; escape cancels."
            yield Static(question, id="question", markup=False)
            if self.word:
                yield Input(placeholder=self.word, id="word")
            with Horizontal():
                yield Button("Yes (enter)" if self.word else "Yes (y)", id="yes", variant="error",
                             disabled=bool(self.word))
                yield Button("No (esc)" if self.word else "No (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#word" if self.word else "#no").focus()

    @property
    def word_typed(self) -> bool:
        """Whether the confirmation can go ahead: no word is required, or it was typed exactly."""
        return not self.word or self.query_one("#word", Input).value.strip() == self.word

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#yes", Button).disabled = not self.word_typed

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.word_typed:
            self.dismiss(True)
        else:
            self.notify(f"Type {self.word} exactly to confirm, or escape to cancel", severity="warning")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_answer(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        if answer and not self.word_typed:
            return  # y while a word is required: not a confirmation
        self.dismiss(answer)
