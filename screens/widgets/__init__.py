"""Widgets and modals shared by the screens."""

from .confirm import ConfirmScreen
from .edit_levels import EditLevelsScreen
from .help import HelpScreen
from .keyed_table import KeyedTable
from .live_static import LiveStatic
from .status_bar import StatusBar
from .strategy_details import StrategyDetailsScreen

__all__ = ["ConfirmScreen", "EditLevelsScreen", "HelpScreen", "KeyedTable", "LiveStatic", "StatusBar", "StrategyDetailsScreen"]
