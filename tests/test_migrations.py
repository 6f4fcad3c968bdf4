"""Schema migrations: every database is brought to the newest revision when it is opened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, select, text
from sqlmodel import SQLModel

from services.store import SchemaTooNewError, SqlStore, open_store_readonly, read_open_positions, schema
from services.store.sql import make_engine
from services.store.tables import SignalInboxRow
from tests.test_cli import CONFIG, cli


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/db.sqlite"


def _revision(url: str) -> str | None:
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        eng.dispose()


def _pre_migrations_database(url: str) -> None:
    """The baseline tables as tui-trader created them before migrations (no alembic_version),
    with an open position and a pending inbox signal in them."""
    eng = make_engine(url)
    with eng.begin() as conn:
        command.upgrade(schema.alembic_config(conn), schema.BASELINE)
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text(
            "INSERT INTO position_groups (id, run_id, strategy_id, symbol, side, status, opened_at, exit_reason, "
            "realized_pnl, unrealized_pnl, entry_method, entry_attempts, pending_exit) "
            "VALUES (7, 1, 'trend', 'BTCUSDT', 'buy', 'open', 1000, '', 0, 0, 'limit', 1, '')"))
        conn.execute(text(
            "INSERT INTO legs (id, group_id, strategy_id, symbol, side, qty, avg_entry, entry_fee, mark, mark_ts, "
            "unrealized_pnl, stop, trail_act_amount, trail_active, trigger, status, opened_at, exit_fee, exit_reason, "
            "realized_pnl) VALUES (9, 7, 'trend', 'BTCUSDT', 'buy', 2, 100, 0.1, 101, 1001, 2, 95, 0, 0, 'mark', "
            "'open', 1000, 0, '', 0)"))
        conn.execute(text(
            "INSERT INTO signal_inbox (id, strategy_id, symbol, side, price, source, created_at, status, outcome) "
            "VALUES (3, 'trend', 'BTCUSDT', 'buy', 101.5, 'cli', 1000, 'pending', '')"))
    eng.dispose()


def test_every_revision_replayed_on_an_empty_database_gives_the_tables_exactly(tmp_path):
    eng = make_engine(_url(tmp_path))
    with eng.begin() as conn:
        command.upgrade(schema.alembic_config(conn), "head")
        differences = schema.differences(conn)
    eng.dispose()
    assert differences == [], (
        f"services/store/tables.py and the migrations disagree: {differences}; "
        'write the missing revision with `make migration m="what changed"`')


def test_an_empty_database_gets_the_tables_at_the_newest_revision(tmp_path):
    eng = make_engine(_url(tmp_path))
    schema.upgrade(eng)
    with eng.connect() as conn:
        assert schema.differences(conn) == []
    eng.dispose()
    assert _revision(_url(tmp_path)) == schema.head()


def test_a_database_from_before_migrations_is_upgraded_and_keeps_its_rows(tmp_path):
    url = _url(tmp_path)
    _pre_migrations_database(url)
    (leg,) = read_open_positions(url)  # any opening upgrades it
    assert (leg["group_id"], leg["id"], leg["qty"], leg["stop"], leg["group_status"]) == (7, 9, 2.0, 95.0, "open")
    assert (leg["pyramid"], leg["layer"]) == (0, None)  # added columns: their defaults
    assert _revision(url) == schema.head()
    eng = open_store_readonly(url)
    with eng.connect() as conn:
        signal = conn.execute(select(SignalInboxRow.__table__)).one()._mapping
    eng.dispose()
    assert (signal["id"], signal["price"], signal["status"]) == (3, 101.5, "pending")
    assert (signal["intent"], signal["timeframe"], signal["size"]) == ("entry", "", None)


def test_the_engine_resumes_a_position_from_a_database_from_before_migrations(tmp_path):
    url = _url(tmp_path)
    _pre_migrations_database(url)
    store = SqlStore(url)
    loaded = store.open()
    store.close()
    assert [leg["id"] for leg in loaded.legs] == [9]
    assert _revision(url) == schema.head()


def test_a_database_made_by_create_all_from_the_tables_as_they_are_is_taken_as_the_newest(tmp_path):
    url = _url(tmp_path)
    eng = make_engine(url)
    SQLModel.metadata.create_all(eng)  # as bench/recovery.py builds its database
    with eng.begin() as conn:
        conn.execute(SignalInboxRow.__table__.insert().values(strategy_id="trend", created_at=1000, timeframe="15"))
    schema.upgrade(eng)
    with eng.connect() as conn:
        (timeframe,) = conn.execute(select(SignalInboxRow.__table__.c.timeframe)).one()
    eng.dispose()
    assert timeframe == "15" and _revision(url) == schema.head()


def test_upgrading_a_database_at_the_newest_revision_again_only_reads(tmp_path):
    url = _url(tmp_path)
    _pre_migrations_database(url)
    eng = make_engine(url)
    schema.upgrade(eng)
    statements: list[str] = []
    event.listen(eng, "before_cursor_execute", lambda _c, _cur, sql, *_a: statements.append(sql.lstrip().upper()))
    schema.upgrade(eng)
    eng.dispose()
    assert statements and all(sql.startswith(("SELECT", "PRAGMA")) for sql in statements), statements
    assert _revision(url) == schema.head()


def _newer_database(url: str) -> None:
    eng = make_engine(url)
    schema.upgrade(eng)
    with eng.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    eng.dispose()


def test_a_database_from_a_newer_tui_trader_is_refused_by_name(tmp_path):
    url = _url(tmp_path)
    _newer_database(url)
    with pytest.raises(SchemaTooNewError, match="schema revision 0999, written by a newer tui-trader: upgrade tui-trader"):
        open_store_readonly(url)
    store = SqlStore(url)
    with pytest.raises(SchemaTooNewError, match="0999"):
        store.open()
    store.close()
    assert _revision(url) == "0999"  # left as it was


def test_the_cli_refuses_a_newer_database_in_one_line_without_a_traceback(tmp_path):
    db = tmp_path / "db.sqlite"
    _newer_database(f"sqlite:///{db}")
    (tmp_path / "c.toml").write_text(CONFIG)
    proc = cli(tmp_path, "positions", "--config", str(tmp_path / "c.toml"), "--db", str(db))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "schema revision 0999, written by a newer tui-trader" in proc.stderr
    assert "point store.url at another database" in proc.stderr


def test_the_cli_migrates_quietly_and_logs_it(tmp_path):
    db = tmp_path / "db.sqlite"
    _pre_migrations_database(f"sqlite:///{db}")
    (tmp_path / "c.toml").write_text(CONFIG)
    proc = cli(tmp_path, "positions", "--json", "--config", str(tmp_path / "c.toml"), "--db", str(db))
    assert proc.returncode == 0 and proc.stderr == ""
    assert [pos["id"] for pos in json.loads(proc.stdout)] == [9]
    log = [json.loads(line)["event"] for line in (tmp_path / "tui_trader.log").read_text().splitlines()]
    assert log[0].startswith("tui-trader positions: settings ")  # the first line says what is in use
    log = log[1:]
    assert log == [f"database sqlite:///{db} predates migrations: taken as revision 0001", log[1]]  # no Alembic chatter
    assert log[1].startswith(f"migrating database sqlite:///{db} from revision 0001: 0002 Signal inbox rows say")
