"""The bounds of the numbers the settings, the signals and the rules accept."""

from __future__ import annotations

# The bounds are choices, not rules: the tests read them by name, so a mutant of one is not a
# boundary they could pin down.
MAX_NUMBER = 10**12  # pragma: no mutate
"""Prices, steps, quantities, sums of money and weights are below this, and those that must be
positive at least MIN_NUMBER: far beyond any real value, and far from where the engine's float
arithmetic (a quantity is money / price, rounded to a step) overflows or loses its meaning."""
MIN_NUMBER = 1e-12  # pragma: no mutate
MAX_SECONDS = 366 * 86_400  # pragma: no mutate
"""Durations (cooldowns, time exits, delays, time-to-live) are at most a year."""
