"""The built-in simulated market: a random walk per symbol from its settings."""
