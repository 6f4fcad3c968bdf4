"""Venue adapters, one package per venue (its feed, execution client, instrument rules and
message schemas), built by the composition root (tui_trader/wiring.py) behind the ports of
services.ports."""
