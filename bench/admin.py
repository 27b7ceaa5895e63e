"""The admin payments list with many payments: bulk load, the query shapes, the exact SQL."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta
from urllib.parse import urlencode

import requests
import sqlalchemy as sa

from .load import Request

SPAN_DAYS = 730  # the loaded payments spread over the last two years, ids growing with time
STATUSES = [("paid", 60), ("pending", 8), ("failed", 10), ("cancelled", 6), ("expired", 5), ("created", 4),
            ("authorized", 3), ("refunded", 2), ("partially_refunded", 2)]


def _status_case() -> str:
    bounds, total, parts = [], 0, []
    for status, share in STATUSES:
        total += share
        bounds.append((total, status))
    for bound, status in bounds[:-1]:
        parts.append(f"WHEN (g::bigint * 7919) % 100 < {bound} THEN '{status}'")
    return "CASE " + " ".join(parts) + f" ELSE '{bounds[-1][1]}' END"


def bulk_load(engine, rows: int) -> float:
    """``rows`` payments with generate_series, indexes dropped during the load and rebuilt after
    (from their own definitions). Returns the seconds it took."""
    began = time.monotonic()
    with engine.begin() as connection:
        indexes = connection.execute(sa.text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'psp_payment' "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)")).all()
        for name, _definition in indexes:
            connection.execute(sa.text(f'DROP INDEX "{name}"'))
        connection.execute(sa.text(f"""
            INSERT INTO psp_payment (token, order_ref, provider, mode, capture, amount, currency, status,
                psp_reference, authorized_amount, captured_amount, refunded_amount, locale, email, extra,
                created_at, updated_at, paid_at)
            SELECT md5('bench-payment-' || g), 'ADM-' || lpad(g::text, 8, '0'),
                (ARRAY['adyen', 'paypal', 'payplug', 'sips', 'hipay'])[1 + g % 5],
                CASE WHEN g % 10 = 0 THEN 'live' ELSE 'test' END, 'auto',
                100 + (g::bigint * 2654435761) % 99900, 'EUR', s.status,
                'PSP' || g, 0, 0, 0, 'en', 'buyer' || (g % 50000) || '@example.com', '{{}}',
                t.at, t.at, CASE WHEN s.status IN ('paid', 'refunded', 'partially_refunded') THEN t.at END
            FROM generate_series(1, :rows) AS g,
                LATERAL (SELECT {_status_case()} AS status) AS s,
                LATERAL (SELECT now()::timestamp - interval '{SPAN_DAYS} days'
                                + (g * interval '{SPAN_DAYS} days') / :rows AS at) AS t
        """), {"rows": rows})
        connection.execute(sa.text(
            "UPDATE psp_payment SET captured_amount = amount, authorized_amount = amount "
            "WHERE order_ref LIKE 'ADM-%' AND status IN ('paid', 'refunded', 'partially_refunded')"))
        for _name, definition in indexes:
            connection.execute(sa.text(definition))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE psp_payment"))
    return time.monotonic() - began


def query_shapes(rows: int) -> list[tuple[str, dict]]:
    """(name, query-string arguments) of the list's filters, as a merchant uses them."""
    middle = date.today() - timedelta(days=SPAN_DAYS // 2)
    probe = rows // 3
    return [
        ("no filter", {}),
        ("status", {"status": "paid"}),
        ("rare status", {"status": "refunded"}),
        ("provider", {"provider": "adyen"}),
        ("date range (a week)", {"date_from": middle.isoformat(), "date_to": (middle + timedelta(days=6)).isoformat()}),
        ("order reference", {"order_ref": f"ADM-{probe:08d}"}),
        ("amount", {"amount": "12.50"}),
        ("email search", {"q": f"buyer{probe % 50000}@example.com"}),
        ("PSP reference search", {"q": f"PSP{probe}"}),
        ("status + provider + date", {"status": "paid", "provider": "hipay", "date_from": middle.isoformat()}),
    ]


class AdminClient:
    def __init__(self, shop_url: str, email: str, password: str):
        self.url = shop_url
        self.http = requests.Session()
        self.http.trust_env = False
        page = self.http.get(f"{shop_url}/psp/admin/login", timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        answer = self.http.post(f"{shop_url}/psp/admin/login", data={"email": email, "password": password,
                                                                        "csrf_token": token},
                                allow_redirects=False, timeout=10)
        assert answer.status_code == 303, answer.text
        self.cookie = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)

    def request(self, port: int, args: dict, tag: str) -> Request:
        query = urlencode(args)
        return Request("127.0.0.1", port, "GET", "/psp/admin/payments" + (f"?{query}" if query else ""),
                       headers={"Cookie": self.cookie}, tag=tag, keep_body=True)

    def next_before(self, args: dict) -> int | None:
        page = self.http.get(f"{self.url}/psp/admin/payments", params=args, timeout=30)
        page.raise_for_status()
        found = re.search(r"before=(\d+)", page.text)
        return int(found.group(1)) if found else None


def captured_sql(app, args: dict) -> tuple[str, dict]:
    """The statement ``payments_page`` issues for these arguments, and its parameters."""
    from example_shop import db
    from flask_psp.admin import payments as admin_payments

    seen = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        if "FROM psp_payment" in statement:
            seen.append((statement, parameters))

    with app.app_context():
        engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", listen)
        try:
            filters = admin_payments.PaymentFilters.from_args(args)
            before = int(args["before"]) if args.get("before") else None
            admin_payments.payments_page(db.session, filters, before)
        finally:
            sa.event.remove(engine, "before_cursor_execute", listen)
            db.session.remove()
    return seen[-1]


def time_sql(raw_connection, statement: str, parameters, repeat: int) -> list[float]:
    latencies = []
    with raw_connection.cursor() as cursor:
        for _ in range(repeat):
            began = time.monotonic()
            cursor.execute(statement, parameters)
            cursor.fetchall()
            latencies.append((time.monotonic() - began) * 1000)
    raw_connection.rollback()
    return latencies


def explain(raw_connection, statement: str, parameters) -> str:
    with raw_connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    raw_connection.rollback()
    return plan


def overview_shapes() -> list[tuple[str, dict]]:
    """(name, query-string arguments) of the overview as a merchant opens it."""
    today = date.today()
    return [
        ("overview, live, last 30 days", {}),
        ("overview, test, last 30 days", {"mode": "test"}),
        ("overview, test, a quarter", {"mode": "test", "date_from": (today - timedelta(days=89)).isoformat(),
                                       "date_to": today.isoformat()}),
    ]


def overview_request(client: "AdminClient", port: int, args: dict, tag: str) -> Request:
    query = urlencode(args)
    return Request("127.0.0.1", port, "GET", "/psp/admin/" + (f"?{query}" if query else ""),
                   headers={"Cookie": client.cookie}, tag=tag, keep_body=True)
