"""The book-wide entry switch (issue 12): E, the palette and `tui-trader pause --all` stop
every entry — re-entries, signals, the queue, pyramids — while open positions stay managed;
it survives a restart."""

from __future__ import annotations

from services.clock import FakeClock
from services.engine import ENTRIES_STOPPED
from tui_trader.wiring import build_engine
from services.market import Quote
from services.store import SqlStore
from tests.conftest import T0, Harness
from tests.engine_support import make_config, strat
from tests.test_signal_inbox import EngineProcess, cli, workdir  # noqa: F401  (the fixture)


def test_stopped_entries_take_nothing_new_but_positions_stay_managed():
    h = Harness(make_config({"s": strat(stop_loss=1, reentry=True, cooldown_s=0),
                             "m": strat(symbols=["ETHUSDT"], entry="manual")}, max_open=1))
    h.quote("BTCUSDT", 100.0)
    assert h.position("BTCUSDT") is not None
    r = h.engine.stop_entries()
    assert r.ok and r.message.startswith("entries stopped for the whole book")
    snap = h.engine.snapshot()
    assert snap.entries_stopped and {s.id: s.status for s in snap.strategies}["m"] == "stopped"
    signal = h.engine.enter_now("m")  # a signal is refused, not queued for later
    assert not signal.ok and ENTRIES_STOPPED in signal.message
    h.quote("BTCUSDT", 99.0)  # the stop still acts...
    assert h.position("BTCUSDT") is None and h.engine.snapshot().trades[-1].exit_reason == "stop_loss"
    for _ in range(3):  # ...and the re-entering strategy does not enter again
        h.quote("BTCUSDT", 99.0)
    assert h.engine.groups == {}
    assert not h.engine.stop_entries().ok  # already stopped
    assert h.engine.stop_entries(False).ok and not h.engine.snapshot().entries_stopped
    h.quote("BTCUSDT", 99.0)
    assert h.position("BTCUSDT") is not None


def test_the_queue_waits_while_entries_are_stopped():
    h = Harness(make_config({"s": strat(stop_loss=1, reentry=False), "m": strat(symbols=["ETHUSDT"], entry="manual")},
                            max_open=1))
    h.quote("ETHUSDT", 50.0)
    h.quote("BTCUSDT", 100.0)
    assert h.engine.enter_now("m").message.startswith("m ETHUSDT: pool full")  # queued
    h.engine.stop_entries()
    h.quote("BTCUSDT", 99.0)  # the slot frees
    h.quote("ETHUSDT", 50.0)
    h.engine.tick()
    assert h.engine.groups == {} and len(h.engine.queue) == 1
    h.engine.stop_entries(False)
    h.quote("ETHUSDT", 50.0)
    h.engine.tick()
    assert [g.strategy_id for g in h.engine.groups.values()] == ["m"]


def test_the_switch_survives_a_restart(db_url):
    cfg = make_config({"s": strat()})
    h = Harness(cfg, store=SqlStore(db_url))
    assert h.engine.stop_entries().ok
    h.engine.store.close()
    again = build_engine(cfg, FakeClock(T0 + 100), SqlStore(db_url))
    again.open()
    try:
        assert again.snapshot().entries_stopped
        again.on_quote(Quote("BTCUSDT", T0 + 100, 100.0, 100.0))
        assert again.groups == {}
    finally:
        again.store.close()


def test_pause_and_resume_all_from_another_process(workdir):  # noqa: F811
    engine = EngineProcess(workdir)
    try:
        engine.read_until("engine running")
        paused = cli(workdir, "pause", "--all")
        assert paused.returncode == 0, paused
        assert paused.stdout.startswith("entries stopped for the whole book"), paused.stdout
        refused = cli(workdir, "signal", "--strategy", "m", "--wait", "10")
        assert refused.returncode == 1 and "rejected: " in refused.stdout and ENTRIES_STOPPED in refused.stdout
        again = cli(workdir, "pause", "--all")
        assert again.returncode == 1 and "entries are already stopped" in again.stderr
        one = cli(workdir, "pause", "m")
        assert one.returncode == 0 and one.stdout.startswith("m paused"), one
        assert cli(workdir, "resume", "--all").returncode == 0
        bad = cli(workdir, "resume", "ghost")
        assert bad.returncode == 2 and "unknown strategy 'ghost'" in bad.stderr
    finally:
        engine.stop()
