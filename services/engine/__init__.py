"""The engine: a core that keeps the DESIGN §3 evaluation order, and its components."""

from .core import Engine
from .desk import ENTRIES_STOPPED
from .recovery import KEPT_AT_STOP

__all__ = ["ENTRIES_STOPPED", "KEPT_AT_STOP", "Engine"]
