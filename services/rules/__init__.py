"""Pure trading rules: frozen inputs in, a decision out; no I/O, no engine, no store."""
