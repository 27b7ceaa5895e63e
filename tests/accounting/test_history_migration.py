"""Migration 0008 builds the movements of payments made before the journal, from the inbox rows
that applied them; what the inbox cannot date is dated by the payment and says so."""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from flask_psp import migrations
from flask_psp.models import Movement, Payment, PaymentEvent


def test_the_history_of_existing_payments_becomes_movements(database_url, caplog):
    engine = sa.create_engine(database_url)
    migrations.upgrade(engine, "0007")
    payments, inbox = Payment.__table__, PaymentEvent.__table__
    day = datetime(2025, 11, 3, 9, 0)
    with engine.begin() as connection:
        def payment(**values):
            base = dict(token=f"tok-{values['order_ref']}", provider="adyen", mode="live", capture="auto",
                        amount=5000, currency="EUR", status="paid", authorized_amount=5000, extra={},
                        created_at=day, updated_at=datetime(2025, 12, 1), paid_at=day)
            return connection.execute(payments.insert().values(**{**base, **values})).inserted_primary_key[0]

        def applied(payment_id, when, *events):
            return connection.execute(inbox.insert().values(
                provider="adyen", payment_id=payment_id, outcome="applied", received_at=when, processed_at=when,
                headers={}, body="", verified_message={"events": list(events)})).inserted_primary_key[0]

        told = payment(order_ref="TOLD", captured_amount=5000, refunded_amount=1500, status="partially_refunded")
        approved = applied(told, day, {"kind": "approved", "amount": 5000, "authorized_total": 5000})
        first = applied(told, datetime(2025, 11, 10), {"kind": "refunded", "refund_delta": 1000})
        second = applied(told, datetime(2025, 11, 20), {"kind": "refunded", "refund_delta": 500})
        untold = payment(order_ref="UNTOLD", captured_amount=5000, refunded_amount=5000, status="refunded")
        test = payment(order_ref="TEST", mode="test", captured_amount=2000, amount=2000)
        payment(order_ref="NEVER-PAID", captured_amount=0, refunded_amount=0, status="failed", paid_at=None)
    with caplog.at_level(logging.WARNING, logger="flask_psp.migrations"):
        migrations.upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(Movement.__table__).order_by("payment_id", "id")).mappings().all()
    story = [(r["payment_id"], r["kind"], r["amount"], r["occurred_at"], r["event_id"], r["mode"]) for r in rows]
    assert story == [
        (told, "capture", 5000, day, approved, "live"),
        (told, "refund", 1000, datetime(2025, 11, 10), first, "live"),
        (told, "refund", 500, datetime(2025, 11, 20), second, "live"),
        (untold, "capture", 5000, day, None, "live"),
        (untold, "refund", 5000, datetime(2025, 12, 1), None, "live"),
        (test, "capture", 2000, day, None, "test"),
    ]
    undated = [r for r in rows if r["event_id"] is None]
    assert all("not found in the inbox history" in r["note"] for r in undated)
    assert "3 movement(s) could not be dated from the inbox" in caplog.text
    migrations.downgrade(engine, "0007")
    assert not sa.inspect(engine).has_table("psp_movements")
    engine.dispose()
