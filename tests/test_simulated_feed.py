"""The simulated feed's subscriptions (the Feed port's subscribe / unsubscribe)."""

from __future__ import annotations

import asyncio

import pytest

from services.clock import FakeClock
from services.adapters.simulated.feed import SimulatedFeed
from tests.conftest import T0, config


def quoted(feed: SimulatedFeed, clock: FakeClock) -> list[str]:
    clock.advance(1.0)
    return [q.symbol for q in feed.step()]


def test_it_starts_with_every_configured_symbol():
    clock = FakeClock(T0)
    feed = SimulatedFeed(config().symbols, clock, 7)
    assert feed.symbols == ("BTCUSDT", "ETHUSDT", "ACME")
    assert quoted(feed, clock) == ["BTCUSDT", "ETHUSDT", "ACME"]


def test_an_unsubscribed_symbol_is_no_longer_quoted_and_resumes_from_its_last_price():
    clock = FakeClock(T0)
    feed = SimulatedFeed(config().symbols, clock, 7)
    clock.advance(1.0)
    left = {q.symbol: q.last for q in feed.step()}["ETHUSDT"]

    feed.unsubscribe(["ETHUSDT"])
    assert feed.symbols == ("BTCUSDT", "ACME")
    assert [quoted(feed, clock) for _ in range(3)] == [["BTCUSDT", "ACME"]] * 3

    feed.subscribe(["ETHUSDT"])
    clock.advance(0.5)  # the others are not due yet: the new one is, at once
    quotes = feed.step()
    assert [q.symbol for q in quotes] == ["ETHUSDT"]
    assert quotes[0].last == pytest.approx(left, rel=0.01)  # one tick from where it was left
    assert quoted(feed, clock) == ["BTCUSDT", "ACME", "ETHUSDT"]  # in the order subscribed


def test_subscribing_twice_quotes_once():
    clock = FakeClock(T0)
    feed = SimulatedFeed(config().symbols, clock, 7)
    feed.subscribe(iter(["ACME", "ACME"]))
    assert feed.symbols == ("BTCUSDT", "ETHUSDT", "ACME")


def test_a_symbol_without_settings_cannot_be_subscribed():
    clock = FakeClock(T0)
    feed = SimulatedFeed(config().symbols, clock, 7)
    feed.unsubscribe(["ACME"])
    with pytest.raises(ValueError, match="no settings for NOPE"):
        feed.subscribe(["ACME", "NOPE"])
    assert feed.symbols == ("BTCUSDT", "ETHUSDT")  # nothing of a refused call is taken


async def settle() -> None:
    """Let the feed's task run what the clock made due (no time passes)."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_the_running_feed_delivers_what_is_subscribed():
    clock = FakeClock(T0)
    feed = SimulatedFeed(config().symbols, clock, 7)
    got: list[str] = []
    feed.unsubscribe(["BTCUSDT", "ETHUSDT"])
    await feed.start(lambda q: got.append(q.symbol))
    await settle()
    feed.subscribe(["BTCUSDT"])
    clock.advance(1.0)
    await settle()
    feed.unsubscribe(["ACME"])
    clock.advance(1.0)
    await settle()
    await feed.stop()
    assert got == ["ACME", "ACME", "BTCUSDT", "BTCUSDT"]
