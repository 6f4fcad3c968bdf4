"""A Static for content that changes several times a second."""

from __future__ import annotations

from textual.visual import VisualType
from textual.widgets import Static


class LiveStatic(Static):
    """`show(content)` is Static.update that skips content already on show, and asks for a
    screen layout only when the content's height changes. (Static.update lays out the whole
    screen every time; a status line or a detail line refreshed each render doesn't need it.)"""

    _shown: object = None
    _shown_height: int | None = None

    def show(self, content: VisualType) -> None:
        if isinstance(content, str) and content == self._shown:
            return
        self._shown = content
        width = self.content_size.width if self.is_mounted else 0
        if not width:
            self._shown_height = None
            self.update(content)
            return
        self.update(content, layout=False)
        height = self.visual.get_height(self.styles, width)
        if height != self._shown_height:
            self._shown_height = height
            self.refresh(layout=True)
