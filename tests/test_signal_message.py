"""A signal message in TradingView's JSON form: field aliases, the intent an action means
for a strategy, and one "<field>: <reason>" line per problem."""

from __future__ import annotations

import pytest

from services.signal_message import (
    SignalError,
    SignalMessage,
    check_signal,
    read_signal,
    read_signal_json,
)
from tests.engine_support import make_config, strat

CONFIG = make_config({
    "trend": strat(symbols=["BTCUSDT", "ETHUSDT"]),  # long
    "short": strat(side="sell", symbols=["ACME"]),
    "off": strat(enabled=False),
})


def read(**fields) -> SignalMessage:
    return read_signal(fields, CONFIG)


def problems(data) -> list[str]:
    with pytest.raises(SignalError) as caught:
        read_signal_json(data, CONFIG) if isinstance(data, str) else read_signal(data, CONFIG)
    return caught.value.problems


def test_the_plain_fields():
    assert read(strategy="trend", symbol="ETHUSDT", action="buy", price=101.5, timeframe="1h", size=2,
                comment="breakout") == SignalMessage("trend", "entry", "ETHUSDT", "buy", 101.5, "1h", 2.0, "breakout")


@pytest.mark.parametrize("alias, value, attribute, expected", [
    ("ticker", "BTCUSDT", "symbol", "BTCUSDT"),
    ("side", "buy", "side", "buy"),
    ("close", "99.5", "price", 99.5),
    ("interval", "15", "timeframe", "15"),
    ("qty", 3, "size", 3.0),
    ("contracts", "0.5", "size", 0.5),
    ("note", "from the 1h chart", "comment", "from the 1h chart"),
])
def test_each_tradingview_name_is_an_alias(alias, value, attribute, expected):
    assert getattr(read_signal({"strategy": "trend", alias: value}, CONFIG), attribute) == expected


def test_strategy_id_is_an_alias_of_strategy():
    assert read(strategy_id="short").strategy_id == "short"


@pytest.mark.parametrize("strategy, action, intent, side", [
    ("trend", "buy", "entry", "buy"),
    ("trend", "LONG", "entry", "buy"),
    ("trend", "sell", "exit", "sell"),  # TradingView's order action when a long strategy closes
    ("trend", "short", "exit", "sell"),
    ("short", "sell", "entry", "sell"),
    ("short", "Short", "entry", "sell"),
    ("short", "buy", "exit", "buy"),
    ("short", "long", "exit", "buy"),
    ("trend", "exit", "exit", None),
    ("trend", "Close", "exit", None),
    ("short", "flat", "exit", None),
    ("trend", None, "entry", None),  # no action: an entry on the strategy's side
])
def test_what_an_action_means_for_the_strategy(strategy, action, intent, side):
    data = {"strategy": strategy} | ({"action": action} if action else {})
    message = read_signal(data, CONFIG)
    assert (message.intent, message.side) == (intent, side)


@pytest.mark.parametrize("action, market_position, intent", [
    ("sell", "flat", "exit"),
    ("buy", "flat", "exit"),
    (None, "flat", "exit"),
    ("buy", "long", "entry"),  # long/short is accepted and otherwise not used
    ("buy", "SHORT", "entry"),
])
def test_market_position_flat_is_an_exit(action, market_position, intent):
    data = {"strategy": "trend", "market_position": market_position} | ({"action": action} if action else {})
    assert read_signal(data, CONFIG).intent == intent


def test_an_exit_keeps_no_size_since_it_closes_the_whole_position():
    assert read(strategy="trend", action="sell", contracts=2).size is None


def test_an_exchange_prefix_is_dropped_when_the_rest_is_a_known_symbol():
    assert read(strategy="trend", ticker="BINANCE:BTCUSDT").symbol == "BTCUSDT"
    assert problems({"strategy": "trend", "ticker": "BINANCE:DOGEUSDT"}) == [
        "ticker: unknown symbol 'BINANCE:DOGEUSDT' (known: BTCUSDT, ETHUSDT, ACME)"]


def test_a_numeric_timeframe_becomes_text():
    assert read(strategy="trend", interval=15).timeframe == "15"
    assert read(strategy="trend", interval=240.0).timeframe == "240"
    assert read(strategy="trend", timeframe=" 1D ").timeframe == "1D"


def test_a_full_tradingview_template_after_substitution():
    template = ('{"strategy": "trend", "ticker": "{{ticker}}", "action": "{{strategy.order.action}}", '
                '"price": {{close}}, "interval": "{{interval}}", "contracts": {{strategy.order.contracts}}, '
                '"market_position": "{{strategy.market_position}}", "comment": "{{strategy.order.comment}}"}')
    filled = {"{{ticker}}": "BINANCE:ETHUSDT", "{{strategy.order.action}}": "buy", "{{close}}": "2501.25",
              "{{interval}}": "15", "{{strategy.order.contracts}}": "0.4", "{{strategy.market_position}}": "long",
              "{{strategy.order.comment}}": "Long entry"}
    entry = template
    for placeholder, value in filled.items():
        entry = entry.replace(placeholder, value)
    assert read_signal_json(entry, CONFIG) == SignalMessage("trend", "entry", "ETHUSDT", "buy", 2501.25, "15", 0.4,
                                                            "Long entry")
    closing = entry.replace('"buy"', '"sell"').replace('"long"', '"flat"')
    assert read_signal_json(closing, CONFIG) == SignalMessage("trend", "exit", "ETHUSDT", "sell", 2501.25, "15", None,
                                                              "Long entry")


@pytest.mark.parametrize("data, expected", [
    ({"strategy": "x"}, ["strategy: unknown strategy 'x' (known: off, short, trend)"]),
    ({"symbol": "BTCUSDT"}, ["strategy: missing; name the strategy to signal (known: off, short, trend)"]),
    ({"strategy": 7}, ["strategy: must be a strategy id like \"trend\", got 7"]),
    ({"strategy": "trend", "symbol": "ACME"}, ["symbol: strategy trend does not trade ACME (it trades BTCUSDT, ETHUSDT)"]),
    ({"strategy": "trend", "symbol": ""}, ['symbol: must be a symbol like "BTCUSDT", got ""']),
    ({"strategy": "trend", "action": "hold"},
     ['action: must be one of buy, sell, long, short, exit, close, flat, got "hold"']),
    ({"strategy": "trend", "market_position": "up"}, ['market_position: must be one of long, short, flat, got "up"']),
    ({"strategy": "trend", "action": "exit", "market_position": "long"}, ["market_position: long contradicts action exit"]),
    ({"strategy": "trend", "price": "abc"}, ['price: must be a positive number, got "abc"']),
    ({"strategy": "trend", "close": 0}, ["close: must be a positive number, got 0"]),
    ({"strategy": "trend", "price": True}, ["price: must be a positive number, got true"]),
    ({"strategy": "trend", "size": -1}, ["size: must be a positive number, got -1"]),
    ({"strategy": "trend", "contracts": "many"}, ['contracts: must be a positive number, got "many"']),
    ({"strategy": "trend", "timeframe": "fortnight"},
     ['timeframe: must be a chart interval like "15", "1h" or "1D", got "fortnight"']),
    ({"strategy": "trend", "interval": 1.5}, ['interval: must be a chart interval like "15", "1h" or "1D", got 1.5']),
    ({"strategy": "trend", "comment": 5}, ["comment: must be text, got 5"]),
    ({"strategy": "off"}, ["strategy: off is disabled in the settings; it takes no entries"]),
    ({"strategy": "trend", "ticker": "{{ticker}}"},
     ['ticker: "{{ticker}}" is a TradingView placeholder that was not filled in']),
    ({"strategy": "trend", "symbol": "BTCUSDT", "ticker": "BTCUSDT"},
     ["ticker: the same field as symbol; give only one of them"]),
])
def test_each_bad_field_is_one_line_naming_it(data, expected):
    assert problems(data) == expected


def test_an_exit_of_a_disabled_strategy_is_taken_its_positions_are_still_managed():
    assert read(strategy="off", action="exit").intent == "exit"


def test_every_problem_is_reported_at_once():
    assert problems({"strategy": "trend", "price": "abc", "size": 0, "symbol": "DOGE"}) == [
        'price: must be a positive number, got "abc"',
        "symbol: unknown symbol 'DOGE' (known: BTCUSDT, ETHUSDT, ACME)",
        "size: must be a positive number, got 0",
    ]


def test_unknown_fields_are_named_with_the_nearest_known_one():
    (line,) = problems({"strategy": "trend", "tickr": "BTCUSDT"})
    assert line.startswith("tickr: unknown field; did you mean ticker? the fields are strategy or strategy_id, ")
    (line,) = problems({"strategy": "trend", "leverage": 5})
    assert line.startswith("leverage: unknown field; the fields are ") and "size or qty or contracts" in line


@pytest.mark.parametrize("text, expected", [
    ("[1, 2]", ('JSON: must be an object like {"strategy": "trend", "symbol": "BTCUSDT", "action": "buy", '
                '"price": 101.5, "timeframe": "15"}, got [1, 2]')),
    ('{"strategy": "trend",}', ("JSON: not valid JSON (Expecting property name enclosed in double quotes: line 1 "
                                'column 22 (char 21)); expected an object like {"strategy": "trend", ')),
    ('{"strategy": "trend", "price": {{close}}}', "TradingView placeholders like {{close}}: fill them in"),
])
def test_text_that_is_not_a_json_object(text, expected):
    (line,) = problems(text)
    assert expected in line


def test_a_stored_message_is_checked_again_against_changed_settings():
    message = read(strategy="trend", symbol="ETHUSDT", action="buy")
    changed = make_config({"trend": strat(side="sell")})
    assert check_signal(message, changed) == [
        "action: strategy trend only opens sell positions, this entry is buy",
        "symbol: strategy trend does not trade ETHUSDT (it trades BTCUSDT)",
    ]
    assert check_signal(message, CONFIG) == []


def test_describe_says_what_was_asked():
    assert read(strategy="trend", ticker="BTCUSDT", action="buy", price=101.5, interval="15", qty=2).describe() == (
        "entry trend buy BTCUSDT, timeframe 15, price 101.5, size 2")
    assert read(strategy="trend", action="close", note="stop hit").describe() == (
        'exit trend (every symbol it trades), comment "stop hit"')

