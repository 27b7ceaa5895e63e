"""The journal's one way in: record_movement adds a row in the caller's transaction, refuses what
is not a movement, and stores datetimes as naive UTC like the rest of the plugin."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from flask_psp.models import Movement
from flask_psp.movements import MovementKind, record_movement


def test_a_movement_is_added_to_the_callers_transaction_and_kept_on_commit(shop_in_context):
    app, db, _Order = shop_in_context
    when = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    movement = record_movement(db.session, kind=MovementKind.FEE, amount=35, currency="eur", provider="adyen",
                               mode="live", occurred_at=when, psp_reference="FEE-1", note="monthly fee")
    db.session.rollback()
    assert db.session.scalars(select(Movement)).all() == []
    movement = record_movement(db.session, kind="payout", amount=10_000, currency="EUR", provider="adyen",
                               mode="live", occurred_at=when, settlement_line_id=7)
    db.session.commit()
    stored = db.session.scalars(select(Movement)).one()
    assert stored.id == movement.id
    assert (stored.kind, stored.amount, stored.currency, stored.settlement_line_id) == ("payout", 10_000, "EUR", 7)
    assert stored.occurred_at == datetime(2026, 3, 1, 8, 30) and stored.recorded_at is not None


@pytest.mark.parametrize("bad", [
    {"amount": 0}, {"amount": -5}, {"amount": 1.5}, {"amount": True}, {"mode": "prod"},
    {"currency": "EURO"}, {"kind": "gift"}, {"occurred_at": "2026-01-01"},
])
def test_what_is_not_a_movement_is_refused(shop_in_context, bad):
    app, db, _Order = shop_in_context
    args = dict(kind=MovementKind.CAPTURE, amount=100, currency="EUR", provider="payplug", mode="test",
                occurred_at=datetime(2026, 1, 1))
    args.update(bad)
    with pytest.raises(ValueError):
        record_movement(db.session, **args)
    assert db.session.new == set() or not any(isinstance(o, Movement) for o in db.session.new)
