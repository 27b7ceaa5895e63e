"""The journal of movements and its exports: a payment, two partial refunds on two days, a PSP fee
and a payout; the FEC of each day holds exactly that day's entries, balanced, and passes the
checker written from the format's text (fec_checker.py)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from sqlalchemy import func, select

from flask_psp import signals
from flask_psp.events import Event, EventKind as K, VerifiedMessage
from flask_psp.ledger import Ledger
from flask_psp.models import Movement, Payment
from flask_psp.movements import MovementKind, record_movement

from .conftest import SIREN
from .fec_checker import check

DAY1, DAY2, DAY3 = datetime(2026, 3, 2, 10, 15), datetime(2026, 3, 3, 16, 40), datetime(2026, 3, 4, 9, 5)


class Orders:
    def get(self, ref):
        return None

    def mark_paid(self, ref, payment):
        pass


def news(key, *events, mode="live"):
    return VerifiedMessage(provider="payplug", dedupe_key=key, events=list(events), mode=mode,
                           event_type="test", psp_reference="pay_42")


def apply(db, message):
    ledger = Ledger(db.session, Orders(), signals.send)
    return ledger.apply(ledger.receive("payplug", b"{}"), message)


def a_payment(db, mode="live", currency="EUR", amount=5000, ref="ORD-42", psp_reference="pay_42"):
    payment = Payment(order_ref=ref, provider="payplug", mode=mode, amount=amount, currency=currency,
                      status="pending", psp_reference=psp_reference)
    db.session.add(payment)
    db.session.commit()
    return payment


def the_day_story(db):
    """Paid on day 1, refunded 12.00 on day 2 and 8.50 on day 3 (PSP dates), a 0.75 fee on day 2
    and the 28.75 left paid out on day 3, as the settlement import will record them."""
    payment = a_payment(db)
    apply(db, news("paid", Event(K.CAPTURED, amount=5000, currency="EUR", captured_total=5000, occurred_at=DAY1)))
    apply(db, news("refund-1", Event(K.REFUNDED, refund_delta=1200, operation_reference="re_1", occurred_at=DAY2)))
    apply(db, news("refund-2", Event(K.REFUNDED, refund_delta=850, operation_reference="re_2", occurred_at=DAY3)))
    record_movement(db.session, kind=MovementKind.FEE, amount=75, currency="EUR", provider="payplug", mode="live",
                    occurred_at=DAY2.replace(hour=23), payment_id=payment.id, psp_reference="pay_42")
    record_movement(db.session, kind=MovementKind.PAYOUT, amount=2875, currency="EUR", provider="payplug",
                    mode="live", occurred_at=DAY3.replace(hour=12), psp_reference="po_7")
    db.session.commit()
    return payment


def export(app, day, kind="fec", *extra):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["psp", "accounting", "export", "--start", day, "--end", day, "--format", kind,
                                 "--output", "-", *extra])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def lines_of(entries):
    return sorted((line["CompteNum"], line["Debit"], line["Credit"], line["EcritureDate"])
                  for lines in entries.values() for line in lines)


def test_each_days_fec_holds_exactly_that_days_entries_balanced(books):
    app, db, _Order = books
    the_day_story(db)
    day1 = check(f"{SIREN}FEC20260302.txt", export(app, "2026-03-02"))
    assert lines_of(day1) == [("411000", "0,00", "50,00", "20260302"), ("511530", "50,00", "0,00", "20260302")]
    day2 = check(f"{SIREN}FEC20260303.txt", export(app, "2026-03-03"))
    assert lines_of(day2) == sorted([
        ("411000", "12,00", "0,00", "20260303"), ("511530", "0,00", "12,00", "20260303"),  # the first refund
        ("627800", "0,75", "0,00", "20260303"), ("511530", "0,00", "0,75", "20260303"),  # the fee
    ])
    day3 = check(f"{SIREN}FEC20260304.txt", export(app, "2026-03-04"))
    assert lines_of(day3) == sorted([
        ("411000", "8,50", "0,00", "20260304"), ("511530", "0,00", "8,50", "20260304"),  # the second refund
        ("512000", "28,75", "0,00", "20260304"), ("511530", "0,00", "28,75", "20260304"),  # the payout
    ])
    assert [key for key in day2] == [("PPG", "1"), ("PPG", "2")]
    # the three days at once: five entries numbered 1 to 5, the clearing account back to zero
    whole = check(f"{SIREN}FEC20260304.txt", _period(app))
    assert [number for _journal, number in whole] == ["1", "2", "3", "4", "5"]
    clearing = sum(_cents(line["Debit"]) - _cents(line["Credit"])
                   for lines in whole.values() for line in lines if line["CompteNum"] == "511530")
    assert clearing == 0


def _period(app):
    result = app.test_cli_runner().invoke(args=["psp", "accounting", "export", "--start", "2026-03-01", "--end",
                                                "2026-03-04", "--format", "fec", "--output", "-"])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def _cents(text):
    units, cents = text.split(",")
    return int(units) * 100 + int(cents)


def test_a_later_change_to_the_payment_moves_no_entry(books):
    """The old export dated refunds by the payment's last change: a flag set later moved them."""
    app, db, _Order = books
    payment = the_day_story(db)
    before = export(app, "2026-03-03")
    db.session.get(Payment, payment.id).flag = "looked at by the merchant"
    db.session.commit()
    assert export(app, "2026-03-03") == before
    assert export(app, date.today().isoformat()).count(b"\r\n") == 1  # the header only


def test_test_movements_are_never_in_a_fec_and_kept_apart_in_the_csv(books):
    app, db, _Order = books
    the_day_story(db)
    a_payment(db, mode="test", ref="ORD-T", psp_reference="pay_t")
    apply(db, VerifiedMessage(provider="payplug", dedupe_key="test-paid", mode="test", event_type="test",
                              psp_reference="pay_t",
                              events=[Event(K.CAPTURED, amount=5000, currency="EUR", captured_total=5000,
                                            occurred_at=DAY1)]))
    assert db.session.scalar(select(func.count()).select_from(Movement).where(Movement.mode == "test")) == 1
    fec = export(app, "2026-03-02")
    assert b"pay_t" not in fec and b"pay_42" in fec
    live_csv = list(csv.DictReader(io.StringIO(export(app, "2026-03-02", "csv").decode()), delimiter=";"))
    test_csv = list(csv.DictReader(io.StringIO(export(app, "2026-03-02", "csv", "--mode", "test").decode()),
                                   delimiter=";"))
    assert {r["PieceRef"] for r in live_csv} == {"pay_42"} and {r["PieceRef"] for r in test_csv} == {"pay_t"}
    refused = app.test_cli_runner().invoke(args=["psp", "accounting", "export", "--start", "2026-03-02", "--end",
                                                 "2026-03-02", "--format", "fec", "--mode", "test"])
    assert refused.exit_code == 1 and "live movements only" in refused.output


def test_a_foreign_currency_movement_fills_montantdevise_and_idevise(books):
    app, db, _Order = books
    app.config["PSP_EXCHANGE_RATES"] = {"USD": "0.9"}
    a_payment(db, currency="USD", amount=1999)
    apply(db, news("paid-usd", Event(K.CAPTURED, amount=1999, currency="USD", captured_total=1999, occurred_at=DAY1)))
    entries = check(f"{SIREN}FEC20260302.txt", export(app, "2026-03-02"))
    (lines,) = entries.values()
    # 19.99 USD at 0.9: 17.991, booked 17.99 EUR on both sides
    assert {(line["Debit"], line["Credit"], line["Montantdevise"], line["Idevise"]) for line in lines} == {
        ("17,99", "0,00", "19,99", "USD"), ("0,00", "17,99", "19,99", "USD")}
    app.config["PSP_EXCHANGE_RATES"] = None
    result = app.test_cli_runner().invoke(args=["psp", "accounting", "export", "--start", "2026-03-02", "--end",
                                                "2026-03-02", "--format", "fec"])
    assert result.exit_code == 1 and "No exchange rate from USD to EUR" in result.output


def test_the_fec_is_written_to_its_own_file_name(books, tmp_path, monkeypatch):
    app, db, _Order = books
    the_day_story(db)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    result = app.test_cli_runner().invoke(args=["psp", "accounting", "export", "--start", "2026-03-01", "--end",
                                                "2026-03-31", "--format", "fec"])
    assert result.exit_code == 0, result.output
    written = out / f"{SIREN}FEC20260331.txt"
    assert [p.name for p in out.iterdir()] == [written.name]  # and no partial file left beside it
    assert len(check(written.name, written.read_bytes())) == 5


def test_a_fec_needs_the_siren(books):
    app, db, _Order = books
    app.config["PSP_SIREN"] = None
    result = app.test_cli_runner().invoke(args=["psp", "accounting", "export", "--start", "2026-03-01", "--end",
                                                "2026-03-31", "--format", "fec", "--output", "-"])
    assert result.exit_code == 1 and "PSP_SIREN" in result.output
