"""SQLite stores are opened in write-ahead-log mode with NORMAL sync (commits without a disk sync each)."""

import sqlalchemy

from src.sqlite_stores import use_write_ahead_log


def test_sqlite_connections_use_the_write_ahead_log(tmp_path):
    use_write_ahead_log()
    use_write_ahead_log()                         # idempotent: one listener
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1   # NORMAL
        connection.exec_driver_sql("CREATE TABLE t (x)")
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        connection.commit()
    engine.dispose()
    again = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with again.connect() as connection:
        assert connection.exec_driver_sql("SELECT x FROM t").scalar() == 1
    again.dispose()


def test_a_tracker_store_is_in_write_ahead_log_mode(make_cfg, tmp_path):
    import sqlite3

    from src.compose import build_tracker
    tracker = build_tracker(make_cfg())
    database = tracker.tracking_uri.removeprefix("sqlite:///")
    assert sqlite3.connect(database).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
