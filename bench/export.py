"""The accounting export on many movements: ``BENCH_EXPORT_MOVEMENTS`` (1,000,000) live movements —
captures, refunds, fees, payouts of five providers over a year — bulk-loaded with generate_series,
then ``flask psp accounting export --format fec`` (and csv) run in a fresh process each, at a tenth
of the size and at the full size: the time, the file's size, and the process's peak RSS, which
stays the same whatever the size (the export is streamed with a server-side cursor).

Run alone: ``PG_URL=postgresql://…/mydb BENCH_EXPORT_MOVEMENTS=20000 python -m bench.export``
(it empties that database)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import sqlalchemy as sa

from .servers import ROOT, prepare_database

PERIOD_DAYS = 365


def bulk_load(engine, movements: int) -> float:
    """``movements`` live movements over the last year: for each payment a capture, then for one
    in five a refund of a fifth; a fee per capture; a payout per provider and day. Indexes are
    dropped during the load and rebuilt after. Returns the seconds it took."""
    payments = max(1, movements * 10 // 23)  # capture + fee each, a refund for one in five: 2.2 per payment
    began = time.monotonic()
    with engine.begin() as connection:
        base = connection.scalar(sa.text("SELECT coalesce(max(id), 0) FROM psp_payment"))
        indexes = connection.execute(sa.text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename IN ('psp_payment', 'psp_movements') "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)")).all()
        for name, _definition in indexes:
            connection.execute(sa.text(f'DROP INDEX "{name}"'))
        connection.execute(sa.text(f"""
            INSERT INTO psp_payment (id, token, order_ref, provider, mode, capture, amount, currency, status,
                psp_reference, authorized_amount, captured_amount, refunded_amount, extra, created_at, updated_at,
                paid_at)
            SELECT :base + g, md5('export-' || (:base + g)), 'EXP-' || lpad((:base + g)::text, 9, '0'),
                (ARRAY['adyen', 'paypal', 'payplug', 'sips', 'hipay'])[1 + g % 5], 'live', 'auto',
                100 + (g::bigint * 2654435761) % 99900, CASE WHEN g % 50 = 0 THEN 'USD' ELSE 'EUR' END, 'paid',
                'PSP' || g, 0, 0, 0, '{{}}', t.at, t.at, t.at
            FROM generate_series(1, :payments) AS g,
                LATERAL (SELECT now()::timestamp - interval '{PERIOD_DAYS} days'
                                + (g * interval '{PERIOD_DAYS} days') / :payments AS at) AS t
        """), {"payments": payments, "base": base})
        connection.execute(sa.text("""
            INSERT INTO psp_movements (kind, occurred_at, recorded_at, amount, currency, provider, mode, payment_id,
                psp_reference)
            SELECT k.kind, p.paid_at + k.later, p.paid_at + k.later, k.amount, p.currency, p.provider, 'live', p.id,
                p.psp_reference
            FROM psp_payment p,
                LATERAL (VALUES ('capture', interval '0', p.amount),
                                ('fee', interval '1 minute', 25 + p.amount / 100),
                                ('refund', interval '2 days', CASE WHEN p.id % 5 = 0 THEN p.amount / 5 END)) AS k(kind, later, amount)
            WHERE p.id > :base AND k.amount IS NOT NULL AND k.amount > 0
        """), {"base": base})
        connection.execute(sa.text("""
            INSERT INTO psp_movements (kind, occurred_at, recorded_at, amount, currency, provider, mode, psp_reference)
            SELECT 'payout', date_trunc('day', occurred_at) + interval '23 hours', max(recorded_at),
                sum(CASE kind WHEN 'capture' THEN amount ELSE -amount END), currency, provider, 'live',
                'PO-' || provider || '-' || to_char(occurred_at, 'YYYYMMDD') || '-' || currency
            FROM psp_movements WHERE payment_id > :base GROUP BY date_trunc('day', occurred_at), to_char(occurred_at, 'YYYYMMDD'), currency, provider
            HAVING sum(CASE kind WHEN 'capture' THEN amount ELSE -amount END) > 0
        """), {"base": base})
        connection.execute(sa.text("SELECT setval(pg_get_serial_sequence('psp_payment', 'id'), :n)"),
                           {"n": base + payments})
        for _name, definition in indexes:
            connection.execute(sa.text(definition))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE psp_payment"))
        connection.execute(sa.text("VACUUM ANALYZE psp_movements"))
    return time.monotonic() - began


def child(database_url: str, kind: str, start: str, end: str, output: str) -> None:
    """In a fresh process: the export as the command line runs it; prints its figures as JSON."""
    from example_shop import create_app

    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": database_url, "PSP_SIREN": "732829320",
                      "PSP_ENCRYPTION_KEY": "Xr9mS2bdNQyGQ0L1cHj8_J9n1vdqS4uPD0bVZ1bGm9A=",
                      "PSP_EXCHANGE_RATES": {"USD": "0.92"}})
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    began = time.monotonic()
    result = app.test_cli_runner().invoke(args=["psp", "accounting", "export", "--start", start, "--end", end,
                                                "--format", kind, "--output", output])
    seconds = time.monotonic() - began
    if result.exit_code != 0:
        raise SystemExit(f"export failed: {result.output} {result.exception!r}")
    print(json.dumps({"seconds": round(seconds, 2), "bytes": os.path.getsize(output),
                      "rss_before_mb": round(rss_before, 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def run_export(database_url: str, kind: str, start: str, end: str) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, f"export.{kind}")
        answer = subprocess.run([sys.executable, "-m", "bench.export", "--child", database_url, kind, start, end,
                                 output], cwd=ROOT, capture_output=True, text=True, check=False)
        if answer.returncode != 0:
            raise RuntimeError(answer.stderr[-2000:] or answer.stdout[-2000:])
        figures = json.loads(answer.stdout.strip().splitlines()[-1])
        with open(output, "rb") as handle:
            figures["lines"] = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        return figures


def bench_export(database_url: str, movements: int, log=print, fresh: bool = True) -> dict:
    """Load the movements (into an emptied database when ``fresh``) and time the exports."""
    from datetime import timedelta

    if fresh:
        prepare_database(database_url)
    from flask_psp import migrations

    engine = sa.create_engine(database_url)
    migrations.upgrade(engine)
    log(f"loading {movements:,} movements (generate_series) …")
    load_seconds = bulk_load(engine, movements)
    with engine.connect() as connection:
        counted = connection.scalar(sa.text("SELECT count(*) FROM psp_movements WHERE mode = 'live'"))
        first, last = connection.execute(sa.text(
            "SELECT min(occurred_at), max(occurred_at) FROM psp_movements WHERE mode = 'live'")).one()
    engine.dispose()
    log(f"  {counted:,} movements loaded in {load_seconds:.1f} s")
    start, end = first.date(), last.date()
    tenth = max(start, end - timedelta(days=(end - start).days // 10))
    results = {"movements": counted, "load_seconds": round(load_seconds, 1)}
    for kind in ("fec", "csv"):
        for label, since in (("a tenth", tenth), ("all", start)):
            figures = run_export(database_url, kind, since.isoformat(), end.isoformat())
            rate = (figures["lines"] - 1) / 2 / figures["seconds"] if figures["seconds"] else None
            results[f"{kind} {label}"] = {**figures, "period": f"{since}..{end}", "movements_per_second": round(rate or 0)}
            log(f"  {kind.upper():3} {label:<8} {since}..{end}: {(figures['lines'] - 1) // 2:>9,} movements in "
                f"{figures['seconds']:6.1f} s ({rate or 0:,.0f}/s), {figures['bytes'] / 1e6:7.1f} MB written, "
                f"peak RSS {figures['peak_rss_mb']} MB (at start {figures['rss_before_mb']} MB)")
    results["peak_rss_growth_mb"] = round(results["fec all"]["peak_rss_mb"] - results["fec a tenth"]["peak_rss_mb"], 1)
    log(f"  peak RSS, all vs a tenth of the movements: {results['peak_rss_growth_mb']:+} MB")
    return results


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:7])
        return 0
    url = os.environ.get("PG_URL") or "postgresql://postgres@127.0.0.1:5432/bench"
    movements = int(os.environ.get("BENCH_EXPORT_MOVEMENTS") or 1_000_000)
    results = bench_export(url, movements)
    target = results["fec all"]["seconds"]
    print(f"FEC export of {results['movements']:,} movements: {target:.1f} s (target < 30 s), "
          f"peak RSS growth {results['peak_rss_growth_mb']:+} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
