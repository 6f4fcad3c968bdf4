"""The engine and everything it manages. Never imports textual."""
