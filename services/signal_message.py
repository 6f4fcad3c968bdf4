"""One signal message, in a JSON form compatible with TradingView alert messages, read and
checked against the settings in one place: by `tui-trader signal` before it records anything
and by the engine's signal inbox when it takes the row (the settings may have changed between).

An operator can paste a TradingView alert message template as it is, e.g.

    {"strategy": "trend", "ticker": "{{ticker}}", "action": "{{strategy.order.action}}",
     "price": {{close}}, "interval": "{{interval}}", "contracts": {{strategy.order.contracts}}}

Every problem is reported as one line "<field>: <reason>", naming the field as the message
wrote it (TradingView sends exactly what the user typed, so a typo must be visible), or
"JSON" / "the body" for the message as a whole. The text may come from anywhere (a webhook):
it is bounded (size, depth, each text's length, numbers' range) and read strictly (ASCII
numerals, valid Unicode, no key given twice), so that anything else is such a line, never an
exception or a value the engine cannot use."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .config import TradingConfig
from .rules.bounds import MAX_NUMBER  # prices and sizes are below it

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
_TIMEFRAME = re.compile(r"([1-9][0-9]{0,4})?[smhdwSMHDW]?")
_NUMERAL = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*", re.ASCII)
EXAMPLE = '{"strategy": "trend", "symbol": "BTCUSDT", "action": "buy", "price": 101.5, "timeframe": "15"}'

MAX_BODY_BYTES = 64 * 1024
"""A signal is a few hundred bytes: a larger body is refused unread."""
MAX_DEPTH = 32
"""How deeply a body may nest arrays and objects (a signal is flat), checked before json parses it."""
MAX_CHARS = 100
"""The longest text a field other than the comment may hold."""
MAX_COMMENT_CHARS = 1000


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
    """A message that cannot be taken: one line per problem in `problems` (valid UTF-8, each
    one line); `strategy` is the strategy as far as it could be read ("" if not), to record
    the refusal under."""

    def __init__(self, problems: list[str], strategy: str = "") -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.strategy = strategy


def read_signal_json(body: bytes | str, config: TradingConfig) -> SignalMessage:
    """A message from its JSON text: bytes as received (UTF-8; a webhook's body, the CLI's
    input) or text (then MAX_BODY_BYTES counts characters). See read_signal."""
    if len(body) > MAX_BODY_BYTES:
        raise SignalError([f"the body: larger than {MAX_BODY_BYTES // 1024} KiB; a signal is a small JSON object "
                           f"like {EXAMPLE}"])
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SignalError([f"the body: not UTF-8 text (byte 0x{body[exc.start]:02x} at position {exc.start})"]) from None
    if _depth(body) > MAX_DEPTH:  # json would recurse on it, and fail only at Python's recursion limit
        raise SignalError([f"JSON: nested more than {MAX_DEPTH} levels deep; a signal is a flat object like {EXAMPLE}"])
    try:
        data = json.loads(body, object_pairs_hook=_JsonObject.of, parse_int=_integer)
    except json.JSONDecodeError as exc:
        hint = ("; it still holds TradingView placeholders like {{close}}: fill them in (TradingView does "
                "when the alert fires)") if "{{" in body else f"; expected an object like {EXAMPLE}"
        raise SignalError([f"JSON: not valid JSON ({exc}){hint}"]) from None
    return read_signal(data, config)


def read_signal(data: object, config: TradingConfig) -> SignalMessage:
    """A message from its decoded JSON object, checked against the settings. Raises
    SignalError with every problem found."""
    if not isinstance(data, Mapping):
        raise SignalError([f"JSON: must be an object like {EXAMPLE}, got {_shown(data)}"])
    if len(data) > len(_FIELD_OF):  # not a signal, and a line for each would only repeat the same
        raise SignalError([f"JSON: {len(data)} fields; a signal has one of each of {', '.join(FIELDS)} at most"])
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
        raise SignalError(problems, message.strategy_id)
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
        if value is None:
            continue
        if not value > 0:  # NaN as well
            problems.append(f"{name[field]}: must be a positive number, got {_number(value)}")
        elif not value < MAX_NUMBER:
            problems.append(f"{name[field]}: must be less than {MAX_NUMBER:,.0f}, got {_number(value)}")
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
    repeated = getattr(data, "repeated", ())
    problems = [f"{_label(key)}: given more than once; give each field once" for key in repeated]
    for key, raw in data.items():
        field = _FIELD_OF.get(key)
        if field is None:
            problems.append(f"{_label(str(key))}: {_unknown_field(str(key))}")
            continue
        if field in names:
            problems.append(f"{key}: the same field as {names[field]}; give only one of them")
            continue
        names[field] = key
        if key in repeated:  # which of its values was meant is unknown: none is read
            continue
        limit = MAX_COMMENT_CHARS if field == "comment" else MAX_CHARS
        if isinstance(raw, str) and len(raw) > limit:
            problems.append(f"{key}: too long ({len(raw):,} characters; at most {limit:,})")
            continue
        if isinstance(raw, str) and not _is_unicode(raw):  # it could be neither printed nor stored
            problems.append(f"{key}: must be valid Unicode text (no lone surrogate, no bytes that are not UTF-8), "
                            f"got {_shown(raw)}")
            continue
        if isinstance(raw, str) and "{{" in raw:
            problems.append(f"{key}: {_shown(raw)} is a TradingView placeholder that was not filled in")
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
            raise ValueError(f"must be {what}, got {_shown(raw)}")
        return raw.strip()
    return read


def _choice(choices: tuple[str, ...]):
    def read(raw: object) -> str:
        word = raw.strip().lower() if isinstance(raw, str) else None
        if word not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {_shown(raw)}")
        return word
    return read


def _positive(raw: object) -> float:
    """A number or a string of ASCII digits, sign, point and exponent (TradingView substitutes
    {{close}} either way; float() would also read "١٢٣", "1_000" and "nan"). The sign and range
    are checked with the settings (check_signal), so a stored row is checked the same way."""
    if isinstance(raw, str) and _NUMERAL.fullmatch(raw):
        return float(raw)
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        try:
            return float(raw)
        except OverflowError:  # an int beyond any float
            return math.inf if raw > 0 else -math.inf
    raise ValueError(f"must be a positive number, got {_shown(raw)}")


def _timeframe(raw: object) -> str:
    if isinstance(raw, str):
        return raw.strip()
    # compared before converted: an int too large for a float must not reach int(raw) / float(raw)
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and 0 < raw < 100_000 and raw == int(raw):
        return str(int(raw))
    raise ValueError(_not_a_timeframe(raw))


def _not_a_timeframe(raw: object) -> str:
    return f'must be a chart interval like "15", "1h" or "1D", got {_shown(raw)}'


def _comment(raw: object) -> str:
    if not isinstance(raw, str):
        raise TypeError(f"must be text, got {_shown(raw)}")
    return raw


_READERS = {
    "strategy": _text('a strategy id like "trend"'), "symbol": _text('a symbol like "BTCUSDT"'),
    "action": _choice(ACTIONS), "market_position": _choice(_MARKET_POSITIONS), "price": _positive,
    "timeframe": _timeframe, "size": _positive, "comment": _comment,
}


def _without_exchange(symbol: str | None, config: TradingConfig) -> str | None:
    """TradingView's {{ticker}} may carry the exchange ("BINANCE:BTCUSDT"): one named exchange
    is dropped when the rest is a configured symbol ("A:B:BTCUSDT", ":BTCUSDT" are no ticker)."""
    if symbol is None or symbol in config.symbols:
        return symbol
    exchange, _, rest = symbol.partition(":")
    return rest if exchange and rest in config.symbols else symbol


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _shown(raw: object) -> str:
    """A value in a problem line: as JSON (ASCII, one line), cut short."""
    text = json.dumps(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def _label(key: str) -> str:
    """A field name in a problem line: as written, or as JSON when it is long or unprintable."""
    return key if key.isprintable() and 0 < len(key) <= 40 else _shown(key)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- reading the JSON text --------------------------------------------------------------------


class _JsonObject(dict):
    """A JSON object that remembers the keys the text gave more than once (json keeps the last
    value silently: {"strategy": "a", "strategy": "b"} would be b)."""

    repeated: tuple[str, ...] = ()

    @classmethod
    def of(cls, pairs: list[tuple[str, object]]) -> _JsonObject:
        obj = cls(pairs)
        if len(obj) < len(pairs):
            obj.repeated = tuple(key for key, n in Counter(key for key, _ in pairs).items() if n > 1)
        return obj


def _integer(digits: str) -> int | float:
    """A JSON integer: past 20 digits no price or size, read as a float (inf past 1e308) for the
    range check to refuse, rather than an int that float() cannot take (or Python will not
    even read, past 4,300 digits)."""
    return int(digits) if len(digits) <= 20 else float(digits)


def _depth(text: str) -> int:
    """How deeply a JSON text nests arrays and objects (brackets in strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
