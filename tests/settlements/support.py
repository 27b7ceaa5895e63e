"""What an accountant does and sees around settlement reports, shared by the providers' tests:
import a report as ``flask psp settlements import`` does, read back its lines and the movements
the import made, and change a line the way a tampered or wrong report would."""

from __future__ import annotations

import sqlalchemy as sa


def run_cli(shop, *args):
    """``flask psp …`` in the shop's app: (exit code, output)."""
    result = shop.app.test_cli_runner().invoke(args=["psp", *args])
    return result.exit_code, result.output


def import_file(shop, provider, data: bytes, tmp_path, name="report.csv", *extra):
    path = tmp_path / name
    path.write_bytes(data)
    return run_cli(shop, "settlements", "import", provider, "--file", str(path), *extra)


def lines(shop):
    from flask_psp.models import SettlementLine

    with shop.app.app_context():
        db = shop.app.extensions["psp"].db
        rows = db.session.scalars(sa.select(SettlementLine).order_by(SettlementLine.id)).all()
        return [{c: getattr(r, c) for c in ("id", "kind", "status", "gross", "fee", "net", "currency", "payment_id",
                                            "movement_id", "detail", "psp_reference")} for r in rows]


def movements(shop, *kinds):
    from flask_psp.models import Movement

    with shop.app.app_context():
        db = shop.app.extensions["psp"].db
        query = sa.select(Movement).order_by(Movement.id)
        if kinds:
            query = query.where(Movement.kind.in_(kinds))
        rows = db.session.scalars(query).all()
        return [{c: getattr(r, c) for c in ("id", "kind", "amount", "currency", "payment_id", "settlement_line_id",
                                            "mode")} for r in rows]


def problems(shop):
    return [line for line in lines(shop) if line["status"] in ("difference", "unmatched")]


def assert_reconciled(shop):
    """Every line matched its movement or booked its own, and each matched movement is the line's."""
    found = lines(shop)
    assert found, "the report had no line"
    assert problems(shop) == [], problems(shop)
    journal = {m["id"]: m for m in movements(shop)}
    for line in found:
        if line["status"] == "matched":
            movement = journal[line["movement_id"]]
            assert (movement["kind"], movement["amount"], movement["currency"]) == (line["kind"], line["gross"], line["currency"])
        else:
            assert line["status"] == "booked" and line["kind"] in ("fee", "payout")
    return found


def replace_once(data: bytes, old: str, new: str) -> bytes:
    text = data.decode("utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in the report"
    return text.replace(old, new).encode("utf-8")


def refund(shop, ref, amount=None):
    """The merchant refunds through the plugin's Python face (the admin panel's button does the same)."""
    from example_shop import psp

    with shop.app.app_context():
        payment = psp.payments_for(ref)[-1]
        psp.refund(payment, amount)
        return payment.status
