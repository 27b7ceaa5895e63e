"""PayPlug end to end over HTTP: the example shop and the PayPlug simulator on loopback, a buyer
with a real HTTP client, notifications sent by the simulator as PayPlug sends them."""

from __future__ import annotations

import json
import threading

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import LIVE_KEY, TEST_KEY, payplug_settings


def start_payment(shop, buyer, **order):
    ref = buyer.place_order(**order)
    answer = buyer.choose(ref)
    assert answer.status_code == 303, answer.text
    return ref, answer.headers["Location"]


def sim_id(payment_url):
    return payment_url.rstrip("/").split("/")[-1]


def test_buyer_pays_and_the_order_is_paid(make_shop, sim, heard):
    shop = make_shop()
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer, sku="PEN-04", quantity=2)
    assert payment_url.startswith(sim.url + "/pay/pay_")
    created = sim.payments[sim_id(payment_url)]
    assert created["amount"] == 17000 and created["currency"] == "EUR"
    assert created["hosted_payment"]["return_url"].startswith(f"{shop.url}/psp/return/")
    assert created["notification"]["url"] == f"{shop.url}/psp/notify/payplug"
    assert created["billing"]["email"] == "buyer@example.com"

    sim.notifier.paused = True  # the buyer is back first: the return proves the payment, then the notification
    back = buyer.pay_on_payplug(payment_url)
    assert back.status_code == 200
    assert "paid" in back.text and 'data-status="paid"' in back.text
    sim.notifier.paused = False
    assert sim.notifier.wait_until(lambda: all(d.delivered for d in sim.notifier.deliveries), timeout=10)
    assert shop.order(ref)["status"] == "paid"
    (payment,) = shop.payments(ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 17000
    assert heard == [ref]  # once, although the return and the notification both proved it
    token = payment["token"]
    status = requests.get(f"{shop.url}/psp/payments/{token}/status.json", timeout=10).json()
    assert status == {"status": "paid", "order_ref": ref}
    outcomes = sorted(e["outcome"] for e in shop.events())
    assert outcomes.count("applied") == 1 and outcomes.count("duplicate") == 1


def test_return_page_works_without_the_buyers_cookies_and_speaks_french(make_shop, sim):
    shop = make_shop()
    buyer = shop.buyer(accept_language="fr-FR,fr;q=0.9")
    ref, payment_url = start_payment(shop, buyer)
    sim.notifier.paused = True
    sim.pay(sim_id(payment_url))
    (payment,) = shop.payments(ref)
    stranger = requests.get(f"{shop.url}/psp/return/{payment['token']}", timeout=10)  # no cookie at all
    assert stranger.status_code == 200
    assert "payé" in stranger.text and 'lang="fr"' in stranger.text
    assert shop.order(ref)["status"] == "paid"


def test_pending_return_page_polls_until_decided(make_shop, sim):
    shop = make_shop(psp_providers=payplug_settings(sim))
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    (payment,) = shop.payments(ref)
    page = requests.get(f"{shop.url}/psp/return/{payment['token']}", timeout=10)
    assert 'data-status="pending"' in page.text
    assert f"/psp/payments/{payment['token']}/status.json" in page.text  # the poller's URL
    assert shop.order(ref)["status"] == "pending"


def test_declined_card_fails_and_the_buyer_can_try_again(make_shop, sim, heard):
    shop = make_shop()
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    back = buyer.pay_on_payplug(payment_url, card="4000000000000002")
    assert 'data-status="failed"' in back.text and "Try again" in back.text
    assert shop.order(ref)["status"] == "pending"
    page = buyer.http.get(f"{shop.url}/psp/checkout/{ref}", timeout=10)
    assert "previous attempt did not go through" in page.text
    again = buyer.choose(ref)
    assert again.status_code == 303
    buyer.pay_on_payplug(again.headers["Location"])
    assert [p["status"] for p in shop.payments(ref)] == ["failed", "paid"]
    assert shop.order(ref)["status"] == "paid" and heard == [ref]


def test_buyer_cancels_on_the_payment_page(make_shop, sim):
    shop = make_shop()
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    back = buyer.pay_on_payplug(payment_url, action="cancel")
    assert 'data-status="cancelled"' in back.text
    (payment,) = shop.payments(ref)
    assert payment["status"] == "cancelled"
    assert sim.payments[payment["psp_reference"]]["failure"]["code"] == "aborted"
    assert shop.order(ref)["status"] == "pending"


@pytest.mark.parametrize("code,expected", [("1234", "paid"), ("0000", "failed")])
def test_3d_secure_challenge(make_shop, sim, code, expected):
    shop = make_shop()
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    back = buyer.pay_on_payplug(payment_url, card="4000000000003220", code=code)
    assert f'data-status="{expected}"' in back.text
    assert shop.payments(ref)[0]["status"] == expected
    assert sim.payments[shop.payments(ref)[0]["psp_reference"]]["is_3ds"] is (True if expected == "paid" else None) or expected == "failed"


def test_3ds_always_is_forced_on_payplug(make_shop, sim):
    shop = make_shop(psp_providers=payplug_settings(sim, three_ds="always"))
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    assert sim.created_with[sim_id(payment_url)]["force_3ds"] is True


def test_manual_capture_then_capture_from_code(make_shop, sim, heard):
    from example_shop import psp

    shop = make_shop(psp_providers=payplug_settings(sim, capture="manual"))
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    assert sim.payments[sim_id(payment_url)]["authorized_amount"] == 1450
    buyer.pay_on_payplug(payment_url)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "authorized" and payment["captured_amount"] == 0
    assert shop.order(ref)["status"] == "paid" and heard == [ref]  # the order is paid at authorization
    with shop.app.app_context():
        captured = psp.capture(psp.payment(payment["token"]))
        assert captured.status == "paid" and captured.captured_amount == 1450
    assert sim.payments[payment["psp_reference"]]["is_paid"] is True
    assert heard == [ref]


def test_cancelling_an_authorized_payment_cancels_it(make_shop, sim, heard):
    """A deferred payment aborted keeps its authorization block at PayPlug; ``failure`` says how it
    ended, and the notification that follows the abort says the same."""
    from example_shop import psp

    shop = make_shop(psp_providers=payplug_settings(sim, capture="manual"))
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    buyer.pay_on_payplug(payment_url)
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "authorized"
    with shop.app.app_context():
        cancelled = psp.cancel(psp.payment(payment["token"]))
        assert cancelled.status == "cancelled" and cancelled.captured_amount == 0
    at_payplug = sim.payments[payment["psp_reference"]]
    assert at_payplug["authorization"]["authorized_at"] and at_payplug["failure"]["code"] == "aborted"
    sim.notify(payment["psp_reference"])  # PayPlug's notification of the abort, or a reconciliation
    assert sim.notifier.wait_idle(timeout=10)
    (payment,) = shop.payments(ref)
    assert payment["status"] == "cancelled"
    with shop.app.app_context():
        with pytest.raises(ValueError, match="only an authorized payment can be captured"):
            psp.capture(psp.payment(payment["token"]))


def test_partial_then_full_refund(make_shop, sim):
    from example_shop import psp

    shop = make_shop()
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer, sku="MAP-03")
    buyer.pay_on_payplug(payment_url)
    token = shop.payments(ref)[0]["token"]
    with shop.app.app_context():
        payment = psp.refund(psp.payment(token), 990)
        assert (payment.status, payment.refunded_amount) == ("partially_refunded", 990)
        with pytest.raises(ValueError):
            psp.refund(payment, 5000)  # more than what remains
        payment = psp.refund(payment)  # the rest
        assert (payment.status, payment.refunded_amount) == ("refunded", 3990)
    assert sim.payments[shop.payments(ref)[0]["psp_reference"]]["is_refunded"] is True
    assert sim.notifier.wait_idle(timeout=10)
    refund_notifications = [d for d in sim.notifier.deliveries if b'"object":"refund"' in d.body]
    assert len(refund_notifications) == 2 and all(d.delivered for d in refund_notifications)
    assert shop.payments(ref)[0]["status"] == "refunded"  # the refund notifications changed nothing more


# ---------------------------------------------------------------- hostile and faulty

def test_forged_notification_claiming_paid_does_not_pay(make_shop, sim):
    shop = make_shop()
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    forged = dict(sim.payments[sim_id(payment_url)], is_paid=True, paid_at=1700000000)
    answer = requests.post(shop.notify_url(), data=json.dumps(forged), headers={"Content-Type": "application/json"}, timeout=10)
    assert answer.status_code == 200  # verified by re-fetch: PayPlug's own copy says "not paid"
    assert shop.payments(ref)[0]["status"] == "pending"
    assert shop.order(ref)["status"] == "pending"


def test_notification_for_a_payment_payplug_does_not_know_is_refused(make_shop, sim):
    shop = make_shop()
    body = {"id": "pay_forged123", "object": "payment", "is_live": False, "is_paid": True, "amount": 1450,
            "currency": "EUR", "metadata": {}}
    answer = requests.post(shop.notify_url(), json=body, timeout=10)
    assert answer.status_code == 403
    (event,) = shop.events()
    assert event["outcome"] == "rejected" and event["verified"] is False
    assert json.loads(event["body"])["id"] == "pay_forged123"  # kept for the merchant to see


def test_test_mode_notification_against_a_live_payment_does_not_pay(make_shop, sim):
    from cryptography.fernet import Fernet

    providers = payplug_settings(sim, mode="live")
    providers["payplug"]["live"] = {"secret_key": LIVE_KEY, "endpoint": sim.url}
    shop = make_shop(psp_providers=providers, PSP_ENCRYPTION_KEY=Fernet.generate_key().decode())
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    (live,) = shop.payments(ref)
    assert live["mode"] == "live" and sim.payments[sim_id(payment_url)]["is_live"] is True
    # a cheap *test* payment, really paid, whose metadata points at the live payment
    test_payment = requests.post(
        f"{sim.url}/v1/payments", headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=10,
        json={"amount": 1450, "currency": "EUR", "metadata": {"psp_token": live["token"]},
              "hosted_payment": {"return_url": "https://x.example/r", "cancel_url": "https://x.example/c"}},
    ).json()
    sim.pay(test_payment["id"])
    answer = requests.post(shop.notify_url(), json=sim.payments[test_payment["id"]], timeout=10)
    assert answer.status_code == 200
    (payment,) = shop.payments(ref)
    assert payment["status"] == "pending" and "test-mode news for a live-mode payment" in payment["flag"]
    assert shop.order(ref)["status"] == "pending"
    assert [e["outcome"] for e in shop.events() if e["source"] == "notify"] == ["mismatch"]


def test_amount_mismatch_does_not_pay_and_is_flagged(make_shop, sim):
    shop = make_shop()
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    sim.payments[sim_id(payment_url)]["amount"] = 100  # the PSP reports another amount
    sim.notifier.paused = True
    sim.pay(sim_id(payment_url))
    answer = requests.post(shop.notify_url(), json=sim.payments[sim_id(payment_url)], timeout=10)
    assert answer.status_code == 200
    (payment,) = shop.payments(ref)
    assert payment["status"] == "pending" and "amount 100 differs" in payment["flag"]
    assert shop.order(ref)["status"] == "pending"


def test_the_same_notification_ten_times_pays_once(make_shop, sim, heard):
    shop = make_shop()
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    sim.notifier.paused = True
    sim.pay(sim_id(payment_url))
    body = json.dumps(sim.payments[sim_id(payment_url)])
    answers = [requests.post(shop.notify_url(), data=body, timeout=10).status_code for _ in range(10)]
    assert answers == [200] * 10
    assert heard == [ref]
    outcomes = [e["outcome"] for e in shop.events()]
    assert outcomes.count("applied") == 1 and outcomes.count("duplicate") == 9


def test_the_same_notification_from_8_threads_at_once_applies_once(make_shop, sim, heard):
    shop = make_shop()
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    sim.notifier.paused = True
    sim.pay(sim_id(payment_url))
    body = json.dumps(sim.payments[sim_id(payment_url)])
    barrier = threading.Barrier(8)
    codes = []

    def deliver():
        barrier.wait()
        codes.append(requests.post(shop.notify_url(), data=body, timeout=30).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 8
    assert heard == [ref]
    outcomes = [e["outcome"] for e in shop.events()]
    assert outcomes.count("applied") == 1 and outcomes.count("duplicate") == 7
    assert shop.payments(ref)[0]["status"] == "paid"


def test_database_failure_gets_a_5xx_and_the_psps_retry_applies_it(make_shop, sim, heard):
    from example_shop import db

    shop = make_shop()
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    with shop.app.app_context():
        with db.engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE psp_payment_event RENAME TO psp_payment_event_away"))
    try:
        sim.pay(sim_id(payment_url))
        delivery = sim.notifier.deliveries[-1]
        assert sim.notifier.wait_until(lambda: len(delivery.attempts) >= 1, timeout=10)
        assert delivery.attempts[0][0] == 503 and not delivery.delivered
        assert shop.order(ref)["status"] == "pending"
    finally:
        with shop.app.app_context():
            with db.engine.begin() as connection:
                connection.execute(sa.text("ALTER TABLE psp_payment_event_away RENAME TO psp_payment_event"))
    sim.notifier.retry_now()
    assert sim.notifier.wait_until(lambda: delivery.delivered, timeout=10)
    assert shop.order(ref)["status"] == "paid" and heard == [ref]


@pytest.mark.parametrize(
    "body,content_type",
    [(b"this is not json", "application/json"), (b"[1, 2]", "application/json"),
     (b'{"object": "payment"}', "application/json"), (b'{"object": "payment", "id": "../../etc"}', "application/json"),
     (b'{"object": "customer", "id": "cus_1"}', "application/json")],
)
def test_malformed_notifications_get_a_4xx_and_are_kept(make_shop, sim, body, content_type):
    shop = make_shop()
    answer = requests.post(shop.notify_url(), data=body, headers={"Content-Type": content_type}, timeout=10)
    assert answer.status_code == 400
    (event,) = shop.events()
    assert event["outcome"] == "invalid" and event["body"] == body.decode()


def test_payplug_unreachable_at_notification_time_gets_a_5xx(make_shop, sim):
    shop = make_shop(psp_providers=payplug_settings(sim, test={"secret_key": TEST_KEY, "endpoint": "http://127.0.0.1:9"}))
    answer = requests.post(shop.notify_url(), json={"id": "pay_abc", "object": "payment", "is_live": False}, timeout=30)
    assert answer.status_code == 503
    (event,) = shop.events()
    assert event["outcome"] == "error"


# ---------------------------------------------------------------- buyer pages

def test_unknown_tokens_and_orders_are_404(make_shop, sim):
    shop = make_shop()
    for path in ("/psp/return/notatokenatallxxxxxxxxx", "/psp/cancel/notatokenatallxxxxxxxxx",
                 "/psp/payments/notatokenatallxxxxxxxxx/status.json", "/psp/checkout/ORD-NOPE"):
        assert requests.get(shop.url + path, timeout=10).status_code == 404


def test_tokens_are_long_and_unguessable(make_shop, sim):
    shop = make_shop()
    buyer = shop.buyer()
    tokens = set()
    for _ in range(3):
        ref, _url = start_payment(shop, buyer)
        tokens.add(shop.payments(ref)[0]["token"])
    assert len(tokens) == 3 and all(len(t) >= 16 and not t.isdigit() for t in tokens)


def test_a_paid_order_cannot_be_paid_twice(make_shop, sim):
    shop = make_shop()
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    buyer.pay_on_payplug(payment_url)
    page = buyer.http.get(f"{shop.url}/psp/checkout/{ref}", timeout=10)
    assert "already been paid" in page.text and 'name="provider"' not in page.text
    token = buyer.csrf(buyer.http.get(shop.url + "/", timeout=10).text)
    again = buyer.http.post(f"{shop.url}/psp/checkout/{ref}", data={"provider": "payplug", "csrf_token": token},
                            allow_redirects=False, timeout=10)
    assert again.status_code == 200 and "already been paid" in again.text
    assert len(shop.payments(ref)) == 1


def test_checkout_post_without_csrf_token_is_refused(make_shop, sim):
    shop = make_shop()
    buyer = shop.buyer()
    ref = buyer.place_order()
    answer = buyer.http.post(f"{shop.url}/psp/checkout/{ref}", data={"provider": "payplug"}, allow_redirects=False, timeout=10)
    assert answer.status_code == 400
    assert shop.payments(ref) == []


def test_a_provider_the_shop_does_not_offer_cannot_be_chosen(make_shop, sim):
    shop = make_shop()  # PayPlug alone
    buyer = shop.buyer()
    ref = buyer.place_order()
    for provider in ("adyen", "no-such-psp", ""):
        answer = buyer.choose(ref, provider=provider)
        assert answer.status_code == 400 and "not available for this order" in answer.text, provider
        assert 'name="provider"' in answer.text  # the page offers what can be chosen
    assert shop.payments(ref) == []
    assert buyer.choose(ref).status_code == 303


def test_psp_down_at_checkout_says_so_and_keeps_the_order_payable(make_shop, sim):
    shop = make_shop(psp_providers=payplug_settings(sim, test={"secret_key": TEST_KEY, "endpoint": "http://127.0.0.1:9"}))
    buyer = shop.buyer()
    ref = buyer.place_order()
    answer = buyer.choose(ref)
    assert answer.status_code == 502 and "could not be reached" in answer.text
    assert [p["status"] for p in shop.payments(ref)] == ["failed"]
    assert 'name="provider"' in answer.text


def test_a_psp_that_never_answers_is_given_up_after_psp_http_timeout(make_shop, sim):
    import socket

    silent = socket.socket()  # accepts connections (the kernel's backlog) and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        shop = make_shop(psp_providers=payplug_settings(sim, test={"secret_key": TEST_KEY, "endpoint": endpoint}),
                         PSP_HTTP_TIMEOUT=(2, 0.5))
        buyer = shop.buyer()
        ref = buyer.place_order()
        answer = buyer.choose(ref)  # the buyer's own client would give up after 10 s: the shop must answer first
        assert answer.status_code == 502 and "could not be reached" in answer.text
        assert [p["status"] for p in shop.payments(ref)] == ["failed"]
    finally:
        silent.close()


def test_a_redirect_to_another_host_is_refused(make_shop, sim):
    # the simulator builds its payment page on 127.0.0.1; configured as "localhost", that host is foreign
    endpoint = sim.url.replace("127.0.0.1", "localhost")
    shop = make_shop(psp_providers=payplug_settings(sim, test={"secret_key": TEST_KEY, "endpoint": endpoint}))
    buyer = shop.buyer()
    ref = buyer.place_order()
    answer = buyer.choose(ref)
    assert answer.status_code == 502 and "Location" not in answer.headers


def test_test_and_live_keys_never_mix_between_threads(make_shop, sim):
    from cryptography.fernet import Fernet

    live = payplug_settings(sim, mode="live")
    live["payplug"]["live"] = {"secret_key": LIVE_KEY, "endpoint": sim.url}
    key = Fernet.generate_key().decode()
    test_shop = make_shop(PSP_ENCRYPTION_KEY=key)
    live_shop = make_shop(psp_providers=live, PSP_ENCRYPTION_KEY=key)
    results, barrier = [], threading.Barrier(8)

    def checkout(shop):
        buyer = shop.buyer()
        ref = buyer.place_order()
        barrier.wait()
        url = buyer.choose(ref).headers["Location"]
        results.append((shop is live_shop, sim.payments[sim_id(url)]["is_live"]))

    threads = [threading.Thread(target=checkout, args=(s,)) for s in [test_shop, live_shop] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(is_live_shop == is_live for is_live_shop, is_live in results)


def test_cli_fires_a_notification_by_hand(make_shop, sim):
    shop = make_shop()
    buyer = shop.buyer()
    ref, payment_url = start_payment(shop, buyer)
    sim.notifier.paused = True
    sim.pay(sim_id(payment_url))
    token = shop.payments(ref)[0]["token"]
    # "--": a token may start with "-" (one in 64), which click would read as an option
    result = shop.app.test_cli_runner().invoke(args=["psp", "simulate", "notify", "payplug", "--", token])
    assert result.exit_code == 0, result.output
    assert "-> 200" in result.output
    assert shop.order(ref)["status"] == "paid"


def test_cli_says_plainly_when_the_simulator_does_not_know_the_payment(make_shop, sim):
    shop = make_shop()
    ref, _ = start_payment(shop, shop.buyer())
    sim.reset()  # the simulator forgot every payment
    token = shop.payments(ref)[0]["token"]
    result = shop.app.test_cli_runner().invoke(args=["psp", "simulate", "notify", "payplug", "--", token])
    assert result.exit_code == 1 and "Error: the simulator answered 404" in result.output, result.output
    assert shop.order(ref)["status"] == "pending"


@pytest.mark.parametrize("expire_on_commit", [True, False])
def test_shop_code_starting_a_payment_gets_it_as_the_psp_left_it(make_shop, sim, expire_on_commit):
    """``service().start`` from the shop's own code hands back the payment as stored after PayPlug's
    answer, whether or not the shop's session expires its objects on commit."""
    from example_shop import db, psp
    from flask_psp.payments import Urls

    shop = make_shop()
    ref = shop.buyer().place_order()
    with shop.app.test_request_context():
        db.session().expire_on_commit = expire_on_commit
        order = shop.app.extensions["psp"].orders.get(ref)
        payment, started = psp.service().start(
            order, "payplug", "en", lambda token: Urls(f"{shop.url}/psp/return/{token}",
                                                       f"{shop.url}/psp/cancel/{token}", shop.notify_url()))
        assert payment.status == "pending"
        assert payment.psp_reference == started.psp_reference and payment.psp_reference
        assert payment.redirect_url == started.redirect_url
    assert [(p["status"], p["psp_reference"]) for p in shop.payments(ref)] == [("pending", started.psp_reference)]
