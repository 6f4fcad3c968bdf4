"""Generated signal bodies, hostile and nonsensical, through the entry point of `signal --json`
and of a webhook (read_signal_json, bytes or text) and through read_signal: nothing but a
SignalError comes out, each of its lines names a field (or the body / JSON) and can be printed
and stored, and what is accepted is a message the engine can use. Seeded: a failure names the
case that reproduces it."""

from __future__ import annotations

import json
import math
import random
import time

import pytest

from services.signal_message import (
    FIELDS,
    MAX_NUMBER,
    SignalError,
    SignalMessage,
    check_signal,
    read_signal,
    read_signal_json,
)
from tests.engine_support import make_config, strat

CONFIG = make_config({
    "trend": strat(symbols=["BTCUSDT", "ETHUSDT"]),
    "short": strat(side="sell", symbols=["ACME"]),
    "off": strat(enabled=False),
})
NAMES = [name for names in FIELDS.values() for name in names]
CASES = 3000
BUDGET_S = 2.0

NUMBERS = [0, -0.0, 1, -1, 0.5, 101.5, 1e-320, 1e11, 1e12, 1e308, -1e308, math.inf, -math.inf, math.nan,
           10 ** 20, 10 ** 21, 10 ** 400, -(10 ** 400), 2 ** 63]
TEXTS = ["", " ", "trend", "short", "off", "TREND", "BTCUSDT", "BINANCE:BTCUSDT", "A:B:ETHUSDT", ":ETHUSDT", "ACME:",
         "buy", "SELL", "long", "exit", "flat", "15", "1h", "1D", "0", "99999", "100000s", "١٢٣", "１０", "1_000",
         "nan", "inf", "-inf", "Infinity", "1e308", "1e400", "-5", "0x10", " 1.5e2 ", "{{close}}", "\ud800",
         "\udcff", "\ud83d\ude00", "caf\u00e9", "a\nb", "\x00", "\u202e", "x" * 101, "x" * 1001, "[" * 40]


def random_value(rng: random.Random, depth: int = 0):
    """Any JSON value (and a few a JSON text cannot hold: NaN, huge ints, surrogates)."""
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice(NUMBERS)
    if kind == 2:
        return rng.uniform(-1e13, 1e13) * rng.choice([1, 1e-9, 1e300])
    if kind in (3, 4):
        return rng.choice(TEXTS)
    if kind == 5:
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(12)))
    if kind in (6, 7):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {random_key(rng): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def random_key(rng: random.Random) -> str:
    return rng.choice(NAMES) if rng.random() < 0.7 else rng.choice(["tickr", "", "Strategy", "\ud800", "k" * 300,
                                                                     "a: b", "x\ny", "leverage"])


def plausible(rng: random.Random) -> list[tuple[str, object]]:
    """Pairs of an object near a real signal: known fields, mostly good values, some not."""
    good = {"strategy": ["trend", "short", "off"], "symbol": ["BTCUSDT", "BINANCE:ETHUSDT", "ACME"],
            "action": list(("buy", "sell", "exit", "Long")), "market_position": ["long", "flat"],
            "price": [101.5, "99.5", 3], "timeframe": ["15", 60, "1h"], "size": [1, "0.5"], "comment": ["hi"]}
    pairs = []
    for field, names in FIELDS.items():
        if field == "strategy" or rng.random() < 0.5:
            value = rng.choice(good[field]) if rng.random() < 0.7 else random_value(rng)
            pairs.append((rng.choice(names), value))
    if rng.random() < 0.2:
        pairs.append((random_key(rng), random_value(rng)))
    if rng.random() < 0.1:
        pairs.append(rng.choice(pairs))  # a key given twice
    rng.shuffle(pairs)
    return pairs


def as_json(pairs: list[tuple[str, object]], rng: random.Random) -> str:
    """The object's JSON text, keys repeated as given (a dict could not repeat them)."""
    ascii_only = rng.random() < 0.5
    return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=ascii_only)}: {json.dumps(v, ensure_ascii=ascii_only)}"
                           for k, v in pairs) + "}"


def body(rng: random.Random) -> tuple[bytes | str, set[str]]:
    """One generated body and the keys it may hold (any key a problem line may name)."""
    pairs = plausible(rng)
    keys = {k for k, _ in pairs}
    kind = rng.randrange(8)
    if kind == 0:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64))), set()
    if kind == 1:  # a near-signal with bytes flipped, cut or inserted
        data = bytearray(as_json(pairs, rng).encode("utf-8", "surrogatepass"))
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(data) + 1)
            action = rng.randrange(3)
            if action == 0 and at < len(data):
                data[at] = rng.randrange(256)
            elif action == 1:
                del data[at:at + rng.randrange(1, 8)]
            else:
                data[at:at] = rng.choice([b"[", b"{", b'"', b"\\", b"\xff", b"\xed\xa0\x80", b",", b"1e999"])
        return bytes(data), keys | set(NAMES)
    if kind == 2:  # deep nesting, as a value or as the whole body
        levels = rng.choice([31, 32, 33, 1000, 20000])
        deep = "[" * levels + "]" * levels
        return rng.choice([deep, as_json(pairs[:1], rng)[:-1] + ', "comment": ' + deep + "}"]), keys | {"comment"}
    if kind == 3:  # any JSON value at all
        return json.dumps(random_value(rng)), set()
    text = as_json(pairs, rng)
    return (text.encode("utf-8", "surrogatepass") if kind < 6 else text), keys


def keys_in(data: bytes | str) -> set[str]:
    """Every key of every object a body holds, when it can be parsed at all."""
    keys: set[str] = set()

    def hook(pairs):
        keys.update(k for k, _ in pairs)
        return {}

    try:
        json.loads(data, object_pairs_hook=hook)
    except (ValueError, RecursionError):
        pass
    return keys


def names_a_field(line: str, keys: set[str]) -> bool:
    if any(line.startswith(f"{name}: ") for name in (*NAMES, "JSON", "the body", *keys)):
        return True
    quoted = line.split(": ", 1)[0]  # a key that could not be printed, shown as JSON, maybe cut short
    return quoted.startswith('"') and any(json.dumps(k).startswith(quoted.removesuffix("...")) for k in keys)


def check(case: str, read, keys: set[str]) -> None:
    try:
        message = read()
    except SignalError as exc:
        assert exc.problems, case
        for line in exc.problems:
            assert "\n" not in line and len(line) < 400, (case, line)
            line.encode("utf-8")  # printable and storable
            assert names_a_field(line, keys), (case, line)
        exc.strategy.encode("utf-8")
        return
    except Exception as exc:  # anything else is a bug: the case reproduces it
        raise AssertionError(f"{case}: {exc!r}") from exc
    assert isinstance(message, SignalMessage), case
    for number in (message.price, message.size):
        assert number is None or (math.isfinite(number) and 0 < number < MAX_NUMBER), (case, message)
    assert message.strategy_id in CONFIG.strategies and (message.symbol is None or message.symbol in CONFIG.symbols)
    assert check_signal(message, CONFIG) == [], (case, message)
    assert "\n" not in message.describe() and message.describe().encode("utf-8"), case


@pytest.mark.parametrize("seed", [13, 2024])
def test_generated_bodies_are_read_or_refused_naming_a_field(seed):
    rng = random.Random(seed)
    deadline = time.monotonic() + BUDGET_S
    for i in range(CASES):
        data, keys = body(rng)
        check(f"seed {seed} case {i}: {data[:200]!r}", lambda: read_signal_json(data, CONFIG), keys | keys_in(data))
        if time.monotonic() > deadline:  # a slow machine runs fewer cases, never longer
            break


@pytest.mark.parametrize("seed", [13, 2024])
def test_generated_objects_are_read_or_refused_naming_a_field(seed):
    """What the CLI's options and replay rows hand to read_signal: a decoded object of anything."""
    rng = random.Random(seed)
    for i in range(CASES):
        data = dict(plausible(rng)) if rng.random() < 0.8 else random_value(rng)
        keys = set(data) if isinstance(data, dict) else set()
        check(f"seed {seed} object {i}: {data!r:.200}", lambda: read_signal(data, CONFIG), keys)
