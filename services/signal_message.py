"""One signal message, in a JSON form compatible with TradingView alert messages, read and
checked against the settings in one place: by `tui-trader signal` before it records anything
and by the engine's signal inbox when it takes the row (the settings may have changed between).

An operator can paste a TradingView alert message template as it is, e.g.

    {"strategy": "trend", "ticker": "{{ticker}}", "action": "{{strategy.order.action}}",
     "price": {{close}}, "interval": "{{interval}}", "contracts": {{strategy.order.contracts}}}

Every problem is reported as one line "<field>: <reason>", naming the field as the message
wrote it (TradingView sends exactly what the user typed, so a typo must be visible)."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .config import TradingConfig

FIELDS: dict[str, tuple[str, ...]] = {
    "strategy": ("strategy", "strategy_id"),
    "symbol": ("symbol", "ticker"),
    "action": ("action", "side"),
    "market_position": ("market_position",),
    "price": ("price", "close"),
    "timeframe": ("timeframe", "interval"),
    "size": ("size", "qty", "contracts"),
    "comment": ("comment", "note"),
}
"""Each field and the names it may be given by (its own first, then TradingView's and older ones)."""
_FIELD_OF = {name: field for field, names in FIELDS.items() for name in names}

ACTIONS = ("buy", "sell", "long", "short", "exit", "close", "flat")
_EXIT_ACTIONS = ("exit", "close", "flat")
_SIDE_OF = {"buy": "buy", "long": "buy", "sell": "sell", "short": "sell"}
_MARKET_POSITIONS = ("long", "short", "flat")
_TIMEFRAME = re.compile(r"([1-9]\d{0,4})?[smhdwSMHDW]?")
EXAMPLE = '{"strategy": "trend", "symbol": "BTCUSDT", "action": "buy", "price": 101.5, "timeframe": "15"}'


@dataclass(frozen=True, slots=True)
class SignalMessage:
    """A signal for one strategy, its intent decided as TradingView means it:

    - action exit, close or flat, or market_position flat (TradingView's
      {{strategy.market_position}} after the order): an exit of the strategy's position;
    - action buy/long or sell/short on the strategy's own side (or no action): an entry;
    - buy/long or sell/short on the OPPOSITE side of the strategy: an exit as well —
      TradingView's {{strategy.order.action}} is "sell" when a long strategy closes (a partial
      close in TradingView closes the whole position here). market_position long or short is
      accepted and otherwise unused.

    An exit closes the whole position, so an exit's size is not kept. Whether an entry opens
    a position or adds a pyramid to one the strategy already holds is the engine's decision."""

    strategy_id: str
    intent: Literal["entry", "exit"]
    symbol: str | None = None
    """None: every symbol the strategy trades."""
    side: Literal["buy", "sell"] | None = None
    """The side the message named, if it named one."""
    price: float | None = None
    timeframe: str = ""
    size: float | None = None
    """An entry's quantity instead of the strategy's sizing."""
    comment: str = ""

    def describe(self) -> str:
        """What it asks for, in a few words: "entry trend buy BTCUSDT, timeframe 15, price 101.5"."""
        words = [self.intent, self.strategy_id]
        if self.intent == "entry" and self.side:
            words.append(self.side)
        words.append(self.symbol or "(every symbol it trades)")
        details = [f"{label} {value}" for label, value in (
            ("timeframe", self.timeframe), ("price", _number(self.price)), ("size", _number(self.size)),
            ("comment", json.dumps(self.comment) if self.comment else "")) if value]
        return ", ".join([" ".join(words), *details])


class SignalError(ValueError):
    """A message that cannot be taken: one line per problem in `problems`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_signal_json(text: str, config: TradingConfig) -> SignalMessage:
    """A message from its JSON text (see read_signal)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = ("; it still holds TradingView placeholders like {{close}}: fill them in (TradingView does "
                "when the alert fires)") if "{{" in text else f"; expected an object like {EXAMPLE}"
        raise SignalError([f"JSON: not valid JSON ({exc}){hint}"]) from None
    return read_signal(data, config)


def read_signal(data: object, config: TradingConfig) -> SignalMessage:
    """A message from its decoded JSON object, checked against the settings. Raises
    SignalError with every problem found."""
    if not isinstance(data, Mapping):
        raise SignalError([f"JSON: must be an object like {EXAMPLE}, got {json.dumps(data)[:60]}"])
    values, names, problems = _fields(data)
    if "strategy" not in values:
        if "strategy" not in names:
            known = ", ".join(sorted(config.strategies)) or "none are configured"
            problems.insert(0, f"strategy: missing; name the strategy to signal (known: {known})")
        raise SignalError(problems)
    strategy = config.strategies.get(values["strategy"])
    action, market_position = values.get("action"), values.get("market_position")
    if action in _EXIT_ACTIONS and market_position in ("long", "short"):
        problems.append(f"{names['market_position']}: {market_position} contradicts {names['action']} {action}")
    side = _SIDE_OF.get(action or "")
    exits = action in _EXIT_ACTIONS or market_position == "flat" or (
        side is not None and strategy is not None and side != strategy.side)
    message = SignalMessage(
        strategy_id=values["strategy"], intent="exit" if exits else "entry",
        symbol=_without_exchange(values.get("symbol"), config), side=side, price=values.get("price"),
        timeframe=values.get("timeframe", ""), size=None if exits else values.get("size"),
        comment=values.get("comment", ""))
    problems += check_signal(message, config, names)
    if problems:
        raise SignalError(problems)
    return message


def check_signal(message: SignalMessage, config: TradingConfig, names: Mapping[str, str] | None = None) -> list[str]:
    """What is wrong with a message under these settings (names: how the message wrote each
    field, for the lines)."""
    name = {**{f: f for f in FIELDS}, **(names or {})}
    problems = []
    sid, symbol = message.strategy_id, message.symbol
    strategy = config.strategies.get(sid)
    if strategy is None:
        problems.append(f"{name['strategy']}: unknown strategy {sid!r} (known: {', '.join(sorted(config.strategies)) or 'none'})")
    elif message.intent == "entry" and not strategy.enabled:
        problems.append(f"{name['strategy']}: {sid} is disabled in the settings; it takes no entries")
    elif message.intent == "entry" and message.side not in (None, strategy.side):
        problems.append(f"{name['action']}: strategy {sid} only opens {strategy.side} positions, "
                        f"this entry is {message.side}")
    if symbol is not None:
        if symbol not in config.symbols:
            problems.append(f"{name['symbol']}: unknown symbol {symbol!r} (known: {', '.join(config.symbols)})")
        elif strategy is not None and symbol not in strategy.symbols:
            problems.append(f"{name['symbol']}: strategy {sid} does not trade {symbol} "
                            f"(it trades {', '.join(strategy.symbols)})")
    for field in ("price", "size"):
        value = getattr(message, field)
        if value is not None and not (math.isfinite(value) and value > 0):
            problems.append(f"{name[field]}: must be a positive number, got {_number(value)}")
    if message.timeframe and not _TIMEFRAME.fullmatch(message.timeframe):
        problems.append(f"{name['timeframe']}: {_not_a_timeframe(message.timeframe)}")
    return problems


def act_on(engine, message: SignalMessage, source: str, payload: dict):
    """Hand a checked message to the engine, the one way every signal source does: an exit
    through exit_signal, an entry (a pyramid when the strategy holds the symbol) through
    enter_now. Returns the engine's CommandResult."""
    if message.side:
        payload = {**payload, "side": message.side}
    common = {"source": source, "price": message.price, "payload": payload, "timeframe": message.timeframe}
    if message.intent == "exit":
        return engine.exit_signal(message.strategy_id, message.symbol, **common)
    return engine.enter_now(message.strategy_id, message.symbol, size=message.size, **common)


# -- reading the fields -----------------------------------------------------------------------


def _fields(data: Mapping) -> tuple[dict, dict[str, str], list[str]]:
    """Each field's value as read, the name it was given by, and one line per problem."""
    values: dict = {}
    names: dict[str, str] = {}
    problems = []
    for key, raw in data.items():
        field = _FIELD_OF.get(key)
        if field is None:
            problems.append(f"{key}: {_unknown_field(str(key))}")
            continue
        if field in names:
            problems.append(f"{key}: the same field as {names[field]}; give only one of them")
            continue
        names[field] = key
        if isinstance(raw, str) and "{{" in raw:
            problems.append(f"{key}: {json.dumps(raw)} is a TradingView placeholder that was not filled in")
            continue
        try:
            values[field] = _READERS[field](raw)
        except (TypeError, ValueError) as exc:
            problems.append(f"{key}: {exc}")
    return values, names, problems


def _unknown_field(key: str) -> str:
    close = difflib.get_close_matches(key.lower(), _FIELD_OF, n=1)
    guess = f"did you mean {close[0]}? " if close else ""
    return f"unknown field; {guess}the fields are {', '.join(' or '.join(n) for n in FIELDS.values())}"


def _text(what: str):
    def read(raw: object) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError(f"must be {what}, got {json.dumps(raw)}")
        return raw.strip()
    return read


def _choice(choices: tuple[str, ...]):
    def read(raw: object) -> str:
        word = raw.strip().lower() if isinstance(raw, str) else None
        if word not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {json.dumps(raw)}")
        return word
    return read


def _positive(raw: object) -> float:
    """A number or a numeric string (TradingView substitutes {{close}} either way); the sign
    is checked with the settings (check_signal), so a stored row is checked the same way."""
    try:
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise TypeError
        return float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"must be a positive number, got {json.dumps(raw)}") from None


def _timeframe(raw: object) -> str:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw) and raw == int(raw) and raw > 0:
        return str(int(raw))
    if isinstance(raw, str):
        return raw.strip()
    raise ValueError(_not_a_timeframe(raw))


def _not_a_timeframe(raw: object) -> str:
    return f'must be a chart interval like "15", "1h" or "1D", got {json.dumps(raw)}'


def _comment(raw: object) -> str:
    if not isinstance(raw, str):
        raise TypeError(f"must be text, got {json.dumps(raw)}")
    return raw


_READERS = {
    "strategy": _text('a strategy id like "trend"'), "symbol": _text('a symbol like "BTCUSDT"'),
    "action": _choice(ACTIONS), "market_position": _choice(_MARKET_POSITIONS), "price": _positive,
    "timeframe": _timeframe, "size": _positive, "comment": _comment,
}


def _without_exchange(symbol: str | None, config: TradingConfig) -> str | None:
    """TradingView's {{ticker}} may carry the exchange ("BINANCE:BTCUSDT"): dropped when the
    rest is a configured symbol."""
    if symbol is None or symbol in config.symbols:
        return symbol
    rest = symbol.rpartition(":")[2]
    return rest if rest in config.symbols else symbol


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"
