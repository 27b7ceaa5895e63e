"""The plugin's own Alembic history: creates everything on an empty database, matches the models,
and keeps its own version table."""

import multiprocessing

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_psp import PSP, OrderInfo
from flask_psp import migrations
from flask_psp.models import metadata


class Orders:
    def get(self, ref):
        return OrderInfo(ref, 100, "EUR")

    def mark_paid(self, ref, payment):
        pass


def make_app(url):
    app = Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY="x", SQLALCHEMY_DATABASE_URI=url)
    db = SQLAlchemy(app)
    PSP(app, db=db, orders=Orders())
    return app, db


def test_upgrade_on_an_empty_database_creates_everything_and_matches_the_models(database_url):
    app, db = make_app(database_url)
    result = app.test_cli_runner().invoke(args=["psp", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"schema at {migrations.head()}" in result.output
    with app.app_context():
        inspector = sa.inspect(db.engine)
        tables = set(inspector.get_table_names())
        assert {t.name for t in metadata.sorted_tables} <= tables
        assert "psp_alembic_version" in tables and "alembic_version" not in tables
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": "psp_alembic_version"})
            assert compare_metadata(context, metadata) == []
        assert migrations.current(db.engine) == migrations.head()
        db.engine.dispose()


def test_the_plugin_history_leaves_the_hosts_alembic_version_alone(database_url):
    app, db = make_app(database_url)
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
            connection.execute(sa.text("INSERT INTO alembic_version VALUES ('host_rev_42')"))
        migrations.upgrade(db.engine)
        with db.engine.connect() as connection:
            assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "host_rev_42"
        migrations.downgrade(db.engine, "base")
        assert not sa.inspect(db.engine).has_table("psp_payment")
        assert sa.inspect(db.engine).has_table("alembic_version")
        db.engine.dispose()


def test_upgrade_refuses_tables_made_without_migrations(database_url):
    app, db = make_app(database_url)
    with app.app_context():
        db.create_all()  # the host's create_all also makes the plugin's tables (they are in its metadata)
        assert sa.inspect(db.engine).has_table("psp_payment")
    result = app.test_cli_runner().invoke(args=["psp", "db", "upgrade"])
    assert result.exit_code != 0 and "flask psp db stamp head" in result.output
    with app.app_context():
        db.engine.dispose()


def test_host_autogenerate_can_leave_plugin_tables_out():
    table = metadata.tables["psp_payment"]
    assert migrations.exclude_plugin_tables(table, "psp_payment", "table", False, None) is False
    assert migrations.exclude_plugin_tables(None, "shop_order", "table", False, None) is True


def _boot_worker(database_url, barrier, failures):
    engine = sa.create_engine(database_url)
    try:
        barrier.wait(timeout=30)
        migrations.upgrade(engine)
    except Exception as exc:  # noqa: BLE001 - reported to the test
        failures.put(repr(exc))
    finally:
        engine.dispose()


def test_workers_migrating_an_empty_database_at_the_same_time_all_succeed(database_url):
    """gunicorn workers, separate processes, that each migrate at boot (as the example shop does)."""
    context = multiprocessing.get_context("spawn")
    barrier, failures = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_boot_worker, args=(database_url, barrier, failures)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    reported = []
    while not failures.empty():
        reported.append(failures.get())
    assert reported == []
    engine = sa.create_engine(database_url)
    assert migrations.current(engine) == migrations.head()
    engine.dispose()


def test_upgrading_to_0012_dates_the_requests_already_awaiting_the_psp(database_url):
    """A shop upgraded with captures awaiting the PSP still sees them counted as overdue on its
    overview: the migration reads each payment's pending requests for ``awaiting_psp_since``."""
    from datetime import datetime, timedelta

    from flask_psp.overdue import count_overdue_requests

    engine = sa.create_engine(database_url)
    try:
        migrations.upgrade(engine, "0011")
        extra = {"pending_operations": [
            {"operation": "refund", "amount": 500, "requested_at": "2026-11-02T10:00:00"},
            {"operation": "capture", "amount": None, "requested_at": "2026-11-01T09:30:00"},
            {"operation": "cancel", "requested_at": "not a date"}]}
        rows = [("tok-waiting", extra), ("tok-unreadable", {"pending_operations": [{"operation": "cancel"}]}),
                ("tok-none", {})]
        payments = sa.table("psp_payment", *(sa.column(c) for c in (
            "token", "order_ref", "provider", "mode", "capture", "amount", "currency", "status", "authorized_amount",
            "captured_amount", "refunded_amount", "created_at", "updated_at")), sa.column("extra", sa.JSON()))
        now = datetime(2026, 11, 5)
        with engine.begin() as connection:
            connection.execute(payments.insert(), [
                {"token": token, "order_ref": f"ORD-{token}", "provider": "adyen", "mode": "test", "capture": "manual",
                 "amount": 1000, "currency": "EUR", "status": "authorized", "authorized_amount": 1000,
                 "captured_amount": 0, "refunded_amount": 0, "created_at": now, "updated_at": now, "extra": value}
                for token, value in rows])
        migrations.upgrade(engine)
        with engine.connect() as connection:
            since = dict(connection.execute(sa.text("SELECT token, awaiting_psp_since FROM psp_payment").columns(
                sa.column("token"), sa.column("awaiting_psp_since", sa.DateTime()))).all())
        assert since == {"tok-waiting": datetime(2026, 11, 1, 9, 30), "tok-unreadable": None, "tok-none": None}
        from sqlalchemy.orm import Session

        with Session(engine) as session:
            assert count_overdue_requests(session, timedelta(days=1), now=datetime(2026, 11, 2, 10, 0)) == 1
            assert count_overdue_requests(session, timedelta(days=1), now=datetime(2026, 11, 2, 9, 29)) == 0
    finally:
        engine.dispose()
