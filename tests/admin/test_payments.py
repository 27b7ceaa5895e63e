"""Payments list and detail; capture, refund and cancel through the provider; the inbox and
"process again"."""

from __future__ import annotations

import json
import re

from sqlalchemy import func, select

from flask_psp.models import PaymentEvent

from .conftest import CSRF, configure_payplug


def pay(panel, sku="MUG-01", code=None):
    buyer = panel.shop.buyer()
    ref = buyer.place_order(sku)
    answer = buyer.choose(ref)
    assert answer.status_code == 303, answer.text
    buyer.pay_on_payplug(answer.headers["Location"], code=code)
    assert panel.sim.notifier.wait_idle(timeout=10)
    return ref, panel.shop.payments(ref)[0]


def confirm(admin, payment_id, action, amount=""):
    """Click the action, then confirm on the confirmation page, as a merchant does: each POST is
    answered by a redirect (POST/redirect/GET), the confirmation page is a GET."""
    first = admin.post(f"/payments/{payment_id}/{action}", {"amount": amount})
    assert first.status_code == 303, first.text
    page = admin.http.get(admin.shop.url + first.headers["Location"], timeout=15)
    assert page.status_code == 200 and 'data-confirm="' + action + '"' in page.text, page.text
    admin.token = CSRF.search(page.text).group(1)
    shown = re.search(r'name="amount" value="([^"]*)"', page.text).group(1)
    return page, admin.post(f"/payments/{payment_id}/{action}", {"amount": shown, "confirmed": "1"})


def refused(admin, answer):
    """A refused POST: redirected to the payment's page, which says why (once)."""
    assert answer.status_code == 303, answer.text
    page = admin.http.get(admin.shop.url + answer.headers["Location"], timeout=15)
    assert page.status_code == 200
    return page.text


def test_manager_refunds_part_then_the_rest(panel):
    configure_payplug(panel, panel.sim.url)
    ref, payment = pay(panel, "MAP-03")  # 39.90 EUR
    manager = panel.admin("manager")
    detail = manager.get(f"/payments/{payment['id']}")
    assert "€39.90" in detail.text and 'data-action="refund"' in detail.text
    page, done = confirm(manager, payment["id"], "refund", "10,50")
    assert "Refund €10.50" in page.text
    assert done.status_code == 303
    after = panel.shop.payments(ref)[0]
    assert (after["status"], after["refunded_amount"]) == ("partially_refunded", 1050)
    assert panel.sim.payments[after["psp_reference"]]["amount_refunded"] == 1050
    _page, done = confirm(manager, payment["id"], "refund")  # blank: all that remains
    assert done.status_code == 303
    after = panel.shop.payments(ref)[0]
    assert (after["status"], after["refunded_amount"]) == ("refunded", 3990)
    timeline = manager.get(f"/payments/{payment['id']}").text
    assert timeline.count('data-outcome="applied"') >= 3
    from flask_psp.models import AuditEntry

    done = panel.query(lambda s: [(a.actor, a.action, a.target, a.details.get("amount"))
                                  for a in s.scalars(select(AuditEntry).where(AuditEntry.action == "payment.refund"))])
    assert done == [("manager@example.com", "payment.refund", payment["token"], 1050),
                    ("manager@example.com", "payment.refund", payment["token"], 2940)]  # the rest, as confirmed


def test_refund_amount_is_checked_before_calling_the_provider(panel):
    configure_payplug(panel, panel.sim.url)
    ref, payment = pay(panel)
    manager = panel.admin("manager")
    # refused on the form, before any confirmation, with the limit in money
    too_much = refused(manager, manager.post(f"/payments/{payment['id']}/refund", {"amount": "99.00"}))
    assert "You can refund at most €14.50." in too_much
    confirmed = refused(manager, manager.post(f"/payments/{payment['id']}/refund", {"amount": "99.00", "confirmed": "1"}))
    assert "You can refund at most €14.50." in confirmed
    garbage = refused(manager, manager.post(f"/payments/{payment['id']}/refund", {"amount": "1.234"}))
    assert "is not an amount in EUR" in garbage
    negative = refused(manager, manager.post(f"/payments/{payment['id']}/refund", {"amount": "-5"}))
    assert "The amount must be positive." in negative
    assert "You can refund at most" not in manager.get(f"/payments/{payment['id']}").text  # said once
    assert panel.shop.payments(ref)[0]["refunded_amount"] == 0
    assert panel.sim.payments[payment["psp_reference"]]["amount_refunded"] == 0


def test_capture_and_cancel_authorized_payments(panel):
    configure_payplug(panel, panel.sim.url, capture="manual")
    ref, payment = pay(panel)
    assert payment["status"] == "authorized"
    owner = panel.admin("owner")
    # PayPlug takes the whole authorization only: the provider's refusal reads in plain words
    detail = owner.get(f"/payments/{payment['id']}").text
    assert 'id="capture-amount"' not in detail and "PayPlug captures the whole amount: €14.50." in detail
    partial = refused(owner, owner.post(f"/payments/{payment['id']}/capture", {"amount": "5.00", "confirmed": "1"}))
    assert "whole authorized amount" in partial
    _page, done = confirm(owner, payment["id"], "capture")
    assert done.status_code == 303
    captured = panel.shop.payments(ref)[0]
    assert (captured["status"], captured["captured_amount"]) == ("paid", 1450)


def test_cancel_a_pending_payment(panel):
    configure_payplug(panel, panel.sim.url)
    buyer = panel.shop.buyer()
    ref = buyer.place_order("TEE-02")
    assert buyer.choose(ref).status_code == 303  # the buyer is on PayPlug's page and wanders off
    payment = panel.shop.payments(ref)[0]
    assert payment["status"] == "pending"
    owner = panel.admin("owner")
    page, done = confirm(owner, payment["id"], "cancel")
    assert "Cancel the payment for order" in page.text
    assert done.status_code == 303
    assert panel.shop.payments(ref)[0]["status"] == "cancelled"
    assert panel.sim.payments[payment["psp_reference"]]["failure"]["code"] == "aborted"


def test_viewer_sees_payments_but_cannot_refund(panel):
    configure_payplug(panel, panel.sim.url)
    ref, payment = pay(panel)
    viewer = panel.admin("viewer")
    detail = viewer.get(f"/payments/{payment['id']}")
    assert detail.status_code == 200 and 'data-action="refund"' not in detail.text
    answer = viewer.post(f"/payments/{payment['id']}/refund", {"amount": "1.00", "confirmed": "1"})
    assert answer.status_code == 403
    assert panel.shop.payments(ref)[0]["refunded_amount"] == 0


def insert_payments(panel, count):
    from flask_psp.models import Payment

    def add(session):
        session.add_all(
            Payment(order_ref=f"BULK-{i:04d}", provider="payplug" if i % 2 else "adyen", mode="test" if i % 3 else "live",
                    amount=1000 + i, currency="EUR", status="paid" if i % 4 == 0 else "failed", email=f"b{i}@example.com")
            for i in range(count)
        )
        session.commit()

    panel.query(add)


def test_list_filters_and_keyset_pages(panel):
    insert_payments(panel, 130)
    viewer = panel.admin("viewer")
    first = viewer.get("/payments")
    ids = [int(i) for i in re.findall(r'data-payment="(\d+)"', first.text)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    older = re.search(r'rel="next" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    second = viewer.get(older.removeprefix("/psp/admin"))
    ids2 = [int(i) for i in re.findall(r'data-payment="(\d+)"', second.text)]
    assert len(ids2) == 50 and max(ids2) < min(ids) and max(ids2) == min(ids) - 1
    third = viewer.get(re.search(r'rel="next" href="([^"]+)"', second.text).group(1).replace("&amp;", "&").removeprefix("/psp/admin"))
    assert len(re.findall(r'data-payment="', third.text)) == 30 and 'rel="next"' not in third.text

    paid = viewer.get("/payments?status=paid&provider=adyen")
    statuses = re.findall(r'data-status="([a-z_]+)"', paid.text)
    assert statuses and set(statuses) == {"paid"} and "payplug" not in re.sub(r"<select.*?</select>", "", paid.text, flags=re.S).split('id="payments"')[1]
    one = viewer.get("/payments?order_ref=BULK-0007")
    assert len(re.findall(r'data-payment="', one.text)) == 1 and "BULK-0007" in one.text
    by_amount = viewer.get("/payments?amount=10.12&currency=EUR")
    assert len(re.findall(r'data-payment="', by_amount.text)) == 1 and "BULK-0012" in by_amount.text
    by_email = viewer.get("/payments?q=b33@example.com")
    assert "BULK-0033" in by_email.text and len(re.findall(r'data-payment="', by_email.text)) == 1
    live = viewer.get("/payments?mode=live")
    assert len(re.findall(r'data-payment="', live.text)) == 44
    bad = viewer.get("/payments?date_from=yesterday")
    assert "YYYY-MM-DD" in bad.text
    today = viewer.get("/payments?date_from=2000-01-01&date_to=2000-01-02")
    assert "No payment matches" in today.text


def test_the_payments_query_walks_an_index(panel):
    """The list's query is an index walk whatever the page: no full scan and sort of the table."""
    from sqlalchemy import text

    from flask_psp.admin.payments import PaymentFilters, payments_page

    insert_payments(panel, 2000)

    def add_rare(session):
        from flask_psp.models import Payment

        session.add_all(Payment(order_ref=f"RARE-{i}", provider="payplug", mode="test", amount=100, currency="EUR",
                                status="expired") for i in range(5))
        session.commit()

    panel.query(add_rare)

    def plan(session):
        dialect = session.get_bind().dialect.name
        captured = []
        from sqlalchemy import event

        def grab(conn, cursor, statement, parameters, context, executemany):
            if "FROM psp_payment" in statement and "ORDER BY" in statement:
                captured.append((statement, parameters))

        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", grab)
        try:
            payments_page(session, PaymentFilters(status="expired"), before_id=100_000)
        finally:
            event.remove(engine, "before_cursor_execute", grab)
        statement, parameters = captured[-1]
        if dialect == "sqlite":
            rows = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            return " ".join(str(r[-1]) for r in rows)
        session.execute(text("ANALYZE psp_payment"))
        # a tiny table: make every alternative to an ordered index walk look expensive; if no index
        # could give the order, a Sort would still appear
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            session.execute(text(f"SET LOCAL {setting} = off"))
        rows = session.connection().exec_driver_sql("EXPLAIN " + statement, parameters).all()
        session.rollback()
        return " ".join(r[0] for r in rows)

    described = panel.query(plan)
    assert "ix_psp_payment_status_id" in described, described
    assert "TEMP B-TREE" not in described.upper() and "Sort" not in described, described


def test_the_search_box_probes_indexes_only(panel):
    """Order reference, provider reference, token or e-mail: each an index lookup, never a scan of
    the whole table (which a million rows would make slow)."""
    from sqlalchemy import event, text

    from flask_psp.admin.payments import PaymentFilters, payments_page

    insert_payments(panel, 300)

    def plan(session):
        captured = []
        engine = session.get_bind()

        def grab(conn, cursor, statement, parameters, context, executemany):
            if "FROM psp_payment" in statement and "ORDER BY" in statement:
                captured.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", grab)
        try:
            rows, _next, _problems = payments_page(session, PaymentFilters(q="b33@example.com"))
        finally:
            event.remove(engine, "before_cursor_execute", grab)
        assert [r.order_ref for r in rows] == ["BULK-0033"]
        statement, parameters = captured[-1]
        if engine.dialect.name == "sqlite":
            described = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            return " ".join(str(r[-1]) for r in described)
        session.execute(text("ANALYZE psp_payment"))
        session.execute(text("SET LOCAL enable_seqscan = off"))  # any plan left with a Seq Scan has no index
        described = session.connection().exec_driver_sql("EXPLAIN " + statement, parameters).all()
        session.rollback()
        return " ".join(r[0] for r in described)

    described = panel.query(plan)
    assert "ix_psp_payment_email" in described and "ix_psp_payment_provider_psp_reference" in described, described
    assert "Seq Scan" not in described and "SCAN psp_payment" not in described, described


def test_inbox_shows_raw_bodies_and_process_again_is_idempotent(panel):
    configure_payplug(panel, panel.sim.url)
    ref, payment = pay(panel)

    event_id = panel.query(lambda s: s.scalar(select(PaymentEvent.id).where(PaymentEvent.source == "notify")))
    manager = panel.admin("manager")
    inbox = manager.get("/inbox")
    assert f'data-event="{event_id}"' in inbox.text
    outcome = re.search(rf'data-event="{event_id}" data-outcome="(\w+)"', inbox.text).group(1)
    assert outcome in ("applied", "duplicate")  # the return page may have brought the same news first
    filtered = manager.get(f"/inbox?outcome={outcome}")
    assert f'data-event="{event_id}"' in filtered.text
    detail = manager.get(f"/inbox/{event_id}")
    assert payment["psp_reference"] in detail.text and 'data-action="process-again"' in detail.text
    again = manager.post(f"/inbox/{event_id}/process", allow_redirects=True)
    assert "Processed again" in again.text
    assert panel.shop.payments(ref)[0]["status"] == "paid"
    assert panel.shop.order(ref)["status"] == "paid"
    events = panel.shop.events()
    assert len([e for e in events if e["source"] == "notify"]) == 1  # re-processed in place, nothing new applied twice


def test_process_again_applies_a_notification_that_could_not_be_verified(panel):
    """PayPlug was unreachable when its notification came (503, stored as error); later the merchant
    presses "process again" and the payment moves."""
    configure_payplug(panel, panel.sim.url)
    buyer = panel.shop.buyer()
    ref = buyer.place_order()
    payment_url = buyer.choose(ref).headers["Location"]
    payment_id = payment_url.rstrip("/").split("/")[-1]
    panel.sim.notifier.paused = True
    panel.sim.pay(payment_id)  # paid at PayPlug; the notification is held back
    body = json.dumps(panel.sim.payments[payment_id])
    owner = panel.admin("owner")
    # the notification arrives while our PayPlug endpoint points nowhere
    owner.post("/providers/payplug", {"enabled": "on", "mode": "test", "capture": "auto", "three_ds": "when_required",
                                      "cred-test-secret_key": "sk_test_simulator", "cred-test-endpoint": "http://127.0.0.1:9"})
    import requests

    answer = requests.post(panel.shop.notify_url(), data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert answer.status_code == 503
    assert panel.shop.order(ref)["status"] == "pending"

    row_id = panel.query(lambda s: s.scalar(select(PaymentEvent.id).where(PaymentEvent.outcome == "error")))
    owner.post("/providers/payplug", {"enabled": "on", "mode": "test", "capture": "auto", "three_ds": "when_required",
                                      "cred-test-secret_key": "sk_test_simulator", "cred-test-endpoint": panel.sim.url})
    again = owner.post(f"/inbox/{row_id}/process", allow_redirects=True)
    assert "Processed again: applied" in again.text
    assert panel.shop.order(ref)["status"] == "paid"
    assert 'data-outcome="applied"' in again.text
    # the held-back delivery finally arrives: a duplicate, nothing moves
    panel.sim.notifier.paused = False
    panel.sim.notifier.retry_now()
    assert panel.sim.notifier.wait_idle(timeout=10)
    assert panel.shop.payments(ref)[0]["status"] == "paid"


def test_process_again_keeps_a_forged_notification_refused(panel):
    configure_payplug(panel, panel.sim.url)
    import requests

    forged = json.dumps({"id": "pay_forged000000000000", "object": "payment", "is_paid": True, "is_live": False,
                         "secret_key": "sk_test_leaked"})
    assert requests.post(panel.shop.notify_url(), data=forged, headers={"Content-Type": "application/json"},
                         timeout=10).status_code == 403

    row_id = panel.query(lambda s: s.scalar(select(PaymentEvent.id).where(PaymentEvent.outcome == "rejected")))
    owner = panel.admin("owner")
    detail = owner.get(f"/inbox/{row_id}")
    assert "sk_test_leaked" not in detail.text and "••••aked" in detail.text  # secrets masked in raw bodies
    again = owner.post(f"/inbox/{row_id}/process", allow_redirects=True)
    assert "Still refused" in again.text


def test_the_payment_page_shows_the_capture_policy_and_when_a_delayed_capture_falls_due(panel):
    configure_payplug(panel, panel.sim.url, capture="delayed", capture_delay_days="3")
    ref, payment = pay(panel)
    assert payment["status"] == "authorized"
    viewer = panel.admin("viewer")
    page = viewer.get(f"/payments/{payment['id']}").text
    policy = re.search(r'<dd id="capture-policy" data-capture="delayed">(.*?)</dd>', page, re.S).group(1)
    assert policy == "delayed — 3 days after the authorization"
    due = re.search(r'<dd id="capture-due">(.*?)</dd>', page, re.S).group(1)
    from flask_psp.models import Payment

    expected = panel.query(lambda s: s.get(Payment, payment["id"]).capture_due_at)
    assert expected is not None and due == expected.strftime("%Y-%m-%d %H:%M:%S") + " UTC"

    configure_payplug(panel, panel.sim.url, capture="auto")
    ref, payment = pay(panel)
    page = viewer.get(f"/payments/{payment['id']}").text
    assert re.search(r'<dd id="capture-policy" data-capture="auto">automatic</dd>', page)
    assert 'id="capture-due"' not in page


def test_the_inbox_filters_notifications_queued_for_the_workers(panel):
    """With background workers, a proven notification waits as ``queued`` until a worker applies it."""
    configure_payplug(panel, panel.sim.url)
    buyer = panel.shop.buyer()
    ref = buyer.place_order()
    payment_id = buyer.choose(ref).headers["Location"].rstrip("/").split("/")[-1]
    panel.sim.notifier.paused = True
    panel.sim.pay(payment_id)
    body = json.dumps(panel.sim.payments[payment_id]).encode()
    from datetime import timedelta

    from flask_psp.providers.base import InboundRequest

    class Broker:  # takes the rows; no worker runs in this test
        requeue_after = timedelta(minutes=5)
        taken: list = []

        def enqueue(self, ids):
            self.taken.extend(ids)

    broker = Broker()
    with panel.app.test_request_context():
        from flask_psp.extension import current_state

        answer = current_state().service().take_notification(
            "payplug", InboundRequest(body, {"Content-Type": "application/json"}, content_type="application/json"),
            "127.0.0.1", queue=broker)
    assert answer.status == 200 and len(broker.taken) == 1
    manager = panel.admin("manager")
    inbox = manager.get("/inbox")
    assert '<option value="queued" >queued</option>' in inbox.text
    queued = manager.get("/inbox?outcome=queued")
    assert re.findall(r'data-event="(\d+)" data-outcome="(\w+)"', queued.text) == [(str(broker.taken[0]), "queued")]
    panel.sim.notifier.paused = False


def test_a_date_filtered_list_pages_through_every_payment_once_newest_first(panel):
    """Payments are not always created in id order (imported, or clocks of several machines): with a
    date filter the list pages along the creation time and still shows each payment exactly once."""
    from datetime import datetime, timedelta

    from flask_psp.models import Payment

    start = datetime(2026, 3, 1, 12, 0, 0)

    def add(session):
        session.add_all(
            Payment(order_ref=f"DATED-{i:03d}", provider="payplug", mode="test", amount=1000, currency="EUR",
                    status="paid", created_at=start + timedelta(minutes=(i * 37) % 120))
            for i in range(120)
        )
        session.commit()

    panel.query(add)
    viewer = panel.admin("viewer")
    page = viewer.get("/payments?date_from=2026-03-01&date_to=2026-03-01")
    seen = []
    while True:
        seen += re.findall(r"DATED-\d{3}", re.sub(r"<select.*?</select>", "", page.text, flags=re.S))
        older = re.search(r'rel="next" href="([^"]+)"', page.text)
        if older is None:
            break
        page = viewer.get(older.group(1).replace("&amp;", "&").removeprefix("/psp/admin"))
    assert sorted(seen) == [f"DATED-{i:03d}" for i in range(120)]
    created = {f"DATED-{i:03d}": (i * 37) % 120 for i in range(120)}
    assert [created[ref] for ref in seen] == sorted((created[ref] for ref in seen), reverse=True)


class ClosedWarehouse:
    """The shop's order adapter while its warehouse is down: ``mark_paid`` raises."""

    def __init__(self, orders):
        self.orders = orders

    def get(self, order_ref):
        return self.orders.get(order_ref)

    def mark_paid(self, order_ref, payment):
        raise RuntimeError("the warehouse is closed")


def test_a_failed_attempt_to_apply_news_shows_in_the_payments_timeline(panel):
    """PayPlug's notification and the buyer's return both prove the payment, but the shop's ``mark_paid``
    fails: the inbox rows that say so (outcome error, kept for the retry job) are in the payment's timeline."""
    configure_payplug(panel, panel.sim.url)
    state = panel.app.extensions["psp"]
    state.orders = ClosedWarehouse(state.orders)
    buyer = panel.shop.buyer()
    ref = buyer.place_order()
    back = buyer.pay_on_payplug(buyer.choose(ref).headers["Location"])
    assert back.status_code == 200 and 'data-status="pending"' in back.text
    notifier = panel.sim.notifier
    assert notifier.wait_until(lambda: notifier.deliveries and all(d.attempts for d in notifier.deliveries),
                               timeout=10)
    assert notifier.deliveries[0].attempts[0][0] == 500
    (payment,) = panel.shop.payments(ref)
    assert payment["status"] == "pending"

    timeline = panel.admin("viewer").get(f"/payments/{payment['id']}").text
    failed = re.findall(r'<tr data-outcome="error">.*?</tr>', timeline, re.S)
    assert {"notify", "return"} <= {re.findall(r'data-source="(\w+)"', row)[0] for row in failed}
    assert "buyer&#39;s return" in timeline or "buyer's return" in timeline
    assert all("the warehouse is closed" in row for row in failed)
    assert "Nothing received yet" not in timeline
    assert panel.query(lambda s: s.scalar(select(func.count()).select_from(PaymentEvent).where(
        PaymentEvent.outcome == "error", PaymentEvent.payment_id.is_(None)))) == 0
