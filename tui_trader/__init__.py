"""tui_trader: the application shell (CLI, app factory, settings)."""
