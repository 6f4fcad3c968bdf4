"""A signal message in TradingView's JSON form: field aliases, the intent an action means
for a strategy, and one "<field>: <reason>" line per problem."""

from __future__ import annotations

import json

import pytest

from services.signal_message import (
    EXAMPLE,
    SignalError,
    SignalMessage,
    act_on,
    check_signal,
    read_signal,
    read_signal_json,
)
from tests.conftest import Harness
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



# -- hostile or nonsensical input: refused with the field named, never a crash (issue 13) ------


def error(data) -> SignalError:
    with pytest.raises(SignalError) as caught:
        read_signal_json(data, CONFIG) if isinstance(data, (str, bytes)) else read_signal(data, CONFIG)
    return caught.value


@pytest.mark.parametrize("text, expected", [
    pytest.param('{"strategy": "trend", "price": 1' + "0" * 400 + "}",
                 "price: must be less than 1,000,000,000,000, got inf", id="beyond a float"),
    pytest.param('{"strategy": "trend", "size": 1' + "0" * 5000 + "}",
                 "size: must be less than 1,000,000,000,000, got inf", id="beyond the 4,300-digit int limit"),
    pytest.param('{"strategy": "trend", "price": -1' + "0" * 400 + "}", "price: must be a positive number, got -inf",
                 id="below a float"),
    ('{"strategy": "trend", "price": 1e308}', "price: must be less than 1,000,000,000,000, got 1e+308"),
    ('{"strategy": "trend", "contracts": 1e12}', "contracts: must be less than 1,000,000,000,000, got 1e+12"),
    ('{"strategy": "trend", "close": "1e400"}', "close: must be less than 1,000,000,000,000, got inf"),
    ('{"strategy": "trend", "price": NaN}', "price: must be a positive number, got nan"),
    ('{"strategy": "trend", "price": Infinity}', "price: must be less than 1,000,000,000,000, got inf"),
])
def test_a_number_out_of_range_is_refused_naming_its_field(text, expected):
    assert error(text).problems == [expected]


def test_the_largest_price_and_size_taken():
    assert read(strategy="trend", price=999_999_999_999, size="999999999999.5").size == 999_999_999_999.5


@pytest.mark.parametrize("numeral", ["١٢٣", "１０", "1_000", "nan", "inf", "Infinity", "0x10", "1e", "--1", ""])
def test_only_ascii_numerals_are_numbers(numeral):
    assert error({"strategy": "trend", "price": numeral}).problems == [
        f"price: must be a positive number, got {json.dumps(numeral)}"]


@pytest.mark.parametrize("numeral, value", [("+3", 3.0), (".5", 0.5), ("5.", 5.0), (" 1.5e2 ", 150.0), ("2E-1", 0.2)])
def test_ascii_numerals_in_every_usual_form(numeral, value):
    assert read(strategy="trend", price=numeral).price == value


def test_a_timeframe_of_other_digits_is_refused():
    assert error({"strategy": "trend", "timeframe": "١٥"}).problems == [
        'timeframe: must be a chart interval like "15", "1h" or "1D", got "\\u0661\\u0665"']


@pytest.mark.parametrize("ticker", ["A:B:ETHUSDT", ":ETHUSDT", "BINANCE:", ":"])
def test_a_symbol_takes_one_named_exchange_prefix_at_most(ticker):
    assert error({"strategy": "trend", "ticker": ticker}).problems == [
        f"ticker: unknown symbol {ticker!r} (known: BTCUSDT, ETHUSDT, ACME)"]


def test_a_field_given_twice_is_refused_not_the_last_one_kept():
    assert error('{"strategy": "trend", "price": 1, "strategy": "off"}').problems == [
        "strategy: given more than once; give each field once"]
    assert error('{"strategy": "trend", "tickr": 1, "tickr": 2}').problems[0] == (
        "tickr: given more than once; give each field once")


def test_json_nested_deeper_than_the_limit_is_refused_before_it_is_parsed():
    def nested(levels: int) -> str:  # the object is the first level
        return '{"strategy": "trend", "comment": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"

    assert error(nested(32)).problems == ["comment: must be text, got " + ("[" * 31 + "]" * 31)[:57] + "..."]
    (line,) = error(nested(33)).problems
    assert line.startswith("JSON: nested more than 32 levels deep; a signal is a flat object like {")
    (line,) = error(nested(100_000)[:60_000]).problems
    assert line.startswith("JSON: nested more than 32 levels deep")
    # brackets inside a string are text
    assert read_signal_json('{"strategy": "trend", "comment": "' + "[{" * 100 + '\\"]"}', CONFIG).comment.startswith("[{")


def test_a_body_larger_than_64_kib_is_refused_unread():
    body = json.dumps({"strategy": "trend", "comment": "x" * 5_000_000})
    assert error(body).problems == ["the body: larger than 64 KiB; a signal is a small JSON object like " + EXAMPLE]
    assert error(body.encode()[:65_537]).problems == error(body).problems


@pytest.mark.parametrize("field, limit", [("strategy", 100), ("ticker", 100), ("action", 100), ("interval", 100),
                                          ("price", 100), ("note", 1000)])
def test_each_text_field_has_a_length_limit(field, limit):
    assert error({"strategy": "trend", field: "1" * (limit + 1)}).problems == [
        f"{field}: too long ({limit + 1:,} characters; at most {limit:,})"]


def test_a_comment_at_its_length_limit_is_taken():
    assert len(read(strategy="trend", note="x" * 1000).comment) == 1000


def test_text_that_is_not_unicode_is_refused_naming_the_field():
    assert error('{"strategy": "trend", "comment": "\\ud800"}').problems == [
        'comment: must be valid Unicode text (no lone surrogate, no bytes that are not UTF-8), got "\\ud800"']
    assert error({"strategy": "\udcff"}).problems == [  # an argument that was not UTF-8 (surrogateescape)
        'strategy: must be valid Unicode text (no lone surrogate, no bytes that are not UTF-8), got "\\udcff"']
    (line,) = error('{"strategy": "trend", "\\ud800": 1}').problems
    assert line.startswith('"\\ud800": unknown field; the fields are ')  # a key that cannot be printed is quoted
    assert read_signal_json('{"strategy": "trend", "comment": "\\ud83d\\ude00"}', CONFIG).comment == "\U0001F600"


def test_a_body_that_is_not_utf8_is_refused():
    assert error(b'{"strategy": "trend", "comment": "\xff"}').problems == [
        "the body: not UTF-8 text (byte 0xff at position 34)"]
    assert read_signal_json('{"strategy": "trend", "note": "caf\u00e9"}'.encode(), CONFIG).comment == "caf\u00e9"


def test_a_value_is_echoed_cut_short():
    (line,) = error({"strategy": "trend", "price": ["x" * 500]}).problems
    assert line == 'price: must be a positive number, got ["' + "x" * 55 + "..."


def test_more_fields_than_names_is_refused_as_a_whole():
    data = {"strategy": "trend"} | {f"x{i}": i for i in range(16)}
    assert error(data).problems == ["JSON: 17 fields; a signal has one of each of strategy, symbol, action, "
                                     "market_position, price, timeframe, size, comment at most"]


def test_the_refusal_carries_the_strategy_as_far_as_it_was_read():
    assert error({"strategy": " x ", "price": 0}).strategy == "x"
    assert error({"strategy_id": "trend", "price": 0}).strategy == "trend"
    assert error({"strategy": 7}).strategy == ""
    assert error("[1]").strategy == ""


# -- a price far from the market is no level to trade at --------------------------------------


def test_an_entry_at_a_price_far_from_the_market_is_refused_with_both_prices():
    h = Harness(make_config({"trend": strat(entry="manual", symbols=["BTCUSDT", "ETHUSDT"])}))
    h.quote("BTCUSDT", 99.0, 101.0)
    refused = act_on(h.engine, read(strategy="trend", symbol="BTCUSDT", price=111), "test", {})
    assert (refused.ok, refused.message) == (False, "BTCUSDT: signal price 111.00 is 11.0% from the market (100.00); "
                                                    "more than engine.signal_price_gap_pct (10%): refused")
    assert not act_on(h.engine, read(strategy="trend", price=89), "test", {}).ok  # every symbol: BTCUSDT is quoted
    assert h.position() is None
    # an exit's price is only recorded; without a fresh quote the engine decides (no fresh quote: not entered)
    exit_ = act_on(h.engine, read(strategy="trend", symbol="BTCUSDT", action="exit", price=1000), "test", {})
    assert "signal price" not in exit_.message
    assert "no fresh quote" in act_on(h.engine, read(strategy="trend", symbol="ETHUSDT", price=1000), "test", {}).message
    assert act_on(h.engine, read(strategy="trend", symbol="BTCUSDT", price=109), "test", {}).ok


def test_a_queued_signal_whose_price_the_market_left_behind_is_not_entered():
    h = Harness(make_config({"s": strat(stop_loss=1, reentry=False), "m": strat(symbols=["ETHUSDT"], entry="manual")},
                            max_open=1))
    h.quote("ETHUSDT", 50.0)
    h.quote("BTCUSDT", 100.0)
    assert h.engine.enter_now("m", price=50.0).message.startswith("m ETHUSDT: pool full")
    h.quote("ETHUSDT", 60.0)  # 20% away by the time a slot frees
    h.quote("BTCUSDT", 99.0)
    h.engine.tick()
    assert [g.strategy_id for g in h.engine.groups.values()] == [] and len(h.engine.queue) == 0


def test_a_timeframe_number_too_large_for_a_float_is_refused():
    assert error({"strategy": "trend", "interval": -(10 ** 400)}).problems == [
        'interval: must be a chart interval like "15", "1h" or "1D", got -1' + "0" * 55 + "..."]
    assert read(strategy="trend", interval=99_999).timeframe == "99999"
