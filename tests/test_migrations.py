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
