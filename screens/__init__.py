"""The operator's screens. One module per screen, shared widgets and modals in `widgets/`.

Screens read frozen snapshots (`services.views`) and act only through the engine's command
methods; they never touch the store or a broker (an import-linter contract checks it)."""
