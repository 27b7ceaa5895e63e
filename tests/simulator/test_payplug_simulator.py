"""The PayPlug simulator alone, over real HTTP on loopback (no Flask test client for the API)."""

from __future__ import annotations

import json
import socket
import threading

import pytest
import requests

from flask_psp.simulator import Notifier, SimulatorServer, create_simulator
from flask_psp.simulator.payplug import PayPlugSimulator, format_euros

TEST_KEY = "sk_test_simulator"
LIVE_KEY = "sk_live_simulator"
OTHER_KEY = "sk_test_other"  # another merchant, test mode
RETURN_URL = "https://shop.example/return/tok123"
CANCEL_URL = "https://shop.example/cancel/tok123"


class Receiver:
    """A shop's notification endpoint: records every POST; answers 500 while ``fail_next`` > 0."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received: list[dict] = []
        self.fail_next = 0

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        with self.lock:
            self.received.append({
                "path": environ["PATH_INFO"],
                "content_type": environ.get("CONTENT_TYPE"),
                "json": json.loads(body),
            })
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
        start_response("500 Internal Server Error" if failing else "200 OK", [("Content-Type", "text/plain")])
        return [b"boom" if failing else b"ok"]

    def bodies(self, resource_id):
        with self.lock:
            return [r["json"] for r in self.received if r["json"].get("id") == resource_id]


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    server = SimulatorServer(receiver).start()
    receiver.url = server.url + "/psp/notify/payplug"
    yield receiver
    server.stop()


@pytest.fixture(scope="module")
def served_sim():
    sim = PayPlugSimulator(
        accounts={TEST_KEY: "demo", LIVE_KEY: "demo", OTHER_KEY: "Other & Co <shop>"},
        retry_delays=(30, 60),
    )
    server = sim.serve()
    yield sim
    server.stop()
    sim.notifier.close()


@pytest.fixture
def simulator(served_sim, receiver):
    served_sim.reset()
    served_sim.notifier.paused = False
    with receiver.lock:
        receiver.received.clear()
        receiver.fail_next = 0
    yield served_sim
    receiver.fail_next = 0
    served_sim.notifier.paused = False
    served_sim.notifier.retry_now()
    assert served_sim.notifier.wait_idle(timeout=5)


@pytest.fixture(scope="module")
def http():
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


def api(http, sim, method, path, key=TEST_KEY, body=None):
    headers = {"PayPlug-Version": "2019-08-06"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return http.request(method, sim.url + path, json=body, headers=headers, timeout=5)


def create(http, sim, receiver, key=TEST_KEY, **overrides):
    body = {
        "amount": 1234,
        "currency": "EUR",
        "billing": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "language": "en"},
        "hosted_payment": {"return_url": RETURN_URL, "cancel_url": CANCEL_URL},
        "notification_url": receiver.url,
        "metadata": {"order": "A-1"},
    }
    body.update(overrides)
    answer = api(http, sim, "POST", "/v1/payments", key=key, body=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def submit(http, payment, card="4242424242424242", action="pay", expiry="12/30"):
    return http.post(
        payment["hosted_payment"]["payment_url"],
        data={"card_number": card, "expiry": expiry, "cvc": "123", "action": action},
        allow_redirects=False, timeout=5,
    )


def wait_notified(sim, receiver, resource_id, count=1):
    assert sim.notifier.wait_until(lambda: len(receiver.bodies(resource_id)) >= count, timeout=5)
    return receiver.bodies(resource_id)


def fetch(http, sim, payment_id, key=TEST_KEY):
    answer = api(http, sim, "GET", f"/v1/payments/{payment_id}", key=key)
    assert answer.status_code == 200, answer.text
    return answer.json()


# ---------------------------------------------------------------------------------------------- create
def test_create_answers_201_with_the_payment_object(http, simulator, receiver):
    payment = create(http, simulator, receiver)
    assert payment["id"].startswith("pay_") and len(payment["id"]) > 10
    assert payment["object"] == "payment"
    assert payment["is_live"] is False
    assert payment["amount"] == 1234 and payment["authorized_amount"] == 0 and payment["amount_refunded"] == 0
    assert payment["currency"] == "EUR"
    assert isinstance(payment["created_at"], int)
    assert payment["is_paid"] is False and payment["paid_at"] is None and payment["is_refunded"] is False
    assert payment["is_3ds"] is None and payment["failure"] is None and payment["authorization"] is None
    assert payment["card"] == {"last4": None, "country": None, "exp_month": None, "exp_year": None, "brand": None}
    assert payment["metadata"] == {"order": "A-1"}
    assert payment["billing"]["email"] == "ada@example.com"
    assert payment["hosted_payment"]["payment_url"] == f"{simulator.url}/pay/{payment['id']}"
    assert payment["hosted_payment"]["return_url"] == RETURN_URL
    assert payment["hosted_payment"]["cancel_url"] == CANCEL_URL
    assert payment["notification"] == {"url": receiver.url, "response_code": None}
    assert payment["installment_plan_id"] is None
    assert simulator.payments[payment["id"]]["amount"] == 1234
    call = simulator.requests[-1]
    assert (call["method"], call["path"], call["payplug_version"], call["status"]) == (
        "POST", "/v1/payments", "2019-08-06", 201)
    assert call["body"]["amount"] == 1234 and simulator.created_with[payment["id"]] == call["body"]
    assert fetch(http, simulator, payment["id"]) == payment


@pytest.mark.parametrize("key", [None, "sk_test_unknown", "sk_live_unknown"])
def test_unknown_or_missing_key_is_401(http, simulator, receiver, key):
    answer = api(http, simulator, "POST", "/v1/payments", key=key,
                 body={"amount": 1000, "currency": "EUR", "hosted_payment": {"return_url": RETURN_URL}})
    assert answer.status_code == 401
    assert answer.json()["object"] == "error" and answer.json()["message"]
    assert simulator.payments == {}


@pytest.mark.parametrize("overrides, field", [
    ({"currency": "USD"}, "currency"),
    ({"currency": None}, "currency"),
    ({"amount": 98}, "amount"),
    ({"amount": 2_000_001}, "amount"),
    ({"amount": 12.5}, "amount"),
    ({"amount": None}, "amount"),
    ({"hosted_payment": None}, "hosted_payment"),
    ({"hosted_payment": {"cancel_url": CANCEL_URL}}, "hosted_payment"),
    ({"authorized_amount": 1000}, "amount"),  # both amount and authorized_amount
    ({"metadata": ["not", "an", "object"]}, "metadata"),
])
def test_invalid_payments_are_400(http, simulator, receiver, overrides, field):
    body = {"amount": 1000, "currency": "EUR", "hosted_payment": {"return_url": RETURN_URL}}
    body.update(overrides)
    answer = api(http, simulator, "POST", "/v1/payments", body=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["object"] == "error" and field in error["details"]
    assert simulator.payments == {}


@pytest.mark.parametrize("amount", [99, 2_000_000])
def test_amount_bounds_are_inclusive(http, simulator, receiver, amount):
    assert create(http, simulator, receiver, amount=amount)["amount"] == amount


def test_payments_are_isolated_by_mode_and_merchant(http, simulator, receiver):
    live = create(http, simulator, receiver, key=LIVE_KEY)
    test = create(http, simulator, receiver, key=TEST_KEY)
    assert live["is_live"] is True and test["is_live"] is False
    assert fetch(http, simulator, live["id"], key=LIVE_KEY)["id"] == live["id"]
    for key, payment in ((TEST_KEY, live), (LIVE_KEY, test), (OTHER_KEY, test)):
        for method, path, body in (
            ("GET", f"/v1/payments/{payment['id']}", None),
            ("PATCH", f"/v1/payments/{payment['id']}", {"aborted": True}),
            ("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": 100}),
            ("GET", f"/v1/payments/{payment['id']}/refunds", None),
        ):
            answer = api(http, simulator, method, path, key=key, body=body)
            assert answer.status_code == 404, (key, method, path)
            assert answer.json()["object"] == "error"
    assert api(http, simulator, "GET", "/v1/payments/pay_doesnotexist").status_code == 404
    assert simulator.payments[test["id"]]["failure"] is None  # the foreign abort changed nothing


# ---------------------------------------------------------------------------------------------- hosted page
def test_hosted_page_shows_amount_merchant_form_and_test_cards(http, simulator, receiver):
    payment = create(http, simulator, receiver, key=OTHER_KEY, amount=123456)
    page = http.get(payment["hosted_payment"]["payment_url"], timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.text
    assert '<html lang="en">' in text
    assert "1,234.56 EUR" in text
    assert "Other &amp; Co &lt;shop&gt;" in text and "<shop>" not in text
    assert 'method="post"' in text
    for name in ('name="card_number"', 'name="expiry"', 'name="cvc"',
                 'name="action" value="pay"', 'name="action" value="cancel"'):
        assert name in text
    for card in ("4242424242424242", "4000000000000002", "4000000000003220"):
        assert card in text
    assert http.get(f"{simulator.url}/pay/pay_unknown", timeout=5).status_code == 404


def test_pay_success_redirects_to_return_url_and_notifies(http, simulator, receiver):
    payment = create(http, simulator, receiver)
    answer = submit(http, payment, card="4242 4242 4242 4242")
    assert answer.status_code == 303 and answer.headers["Location"] == RETURN_URL
    paid = fetch(http, simulator, payment["id"])
    assert paid["is_paid"] is True and isinstance(paid["paid_at"], int)
    assert paid["is_3ds"] is False and paid["failure"] is None and paid["authorization"] is None
    assert paid["card"]["last4"] == "4242" and paid["card"]["brand"] == "Visa"
    assert paid["card"]["exp_month"] == 12 and paid["card"]["exp_year"] == 2030
    [body] = wait_notified(simulator, receiver, payment["id"])
    assert body["object"] == "payment" and body["is_paid"] is True and body["amount"] == 1234
    assert receiver.received[0]["content_type"] == "application/json"
    assert receiver.received[0]["path"] == "/psp/notify/payplug"
    assert simulator.notifier.wait_until(lambda: simulator.payments[payment["id"]]["notification"]["response_code"] == 200)
    done = http.get(payment["hosted_payment"]["payment_url"], timeout=5)
    assert "paid" in done.text and 'name="card_number"' not in done.text


@pytest.mark.parametrize("card", ["4000000000000002", "5555555555554444"])
def test_declined_card_fails_redirects_and_notifies(http, simulator, receiver, card):
    payment = create(http, simulator, receiver)
    answer = submit(http, payment, card=card)
    assert answer.status_code == 303 and answer.headers["Location"] == RETURN_URL
    failed = fetch(http, simulator, payment["id"])
    assert failed["is_paid"] is False
    assert failed["failure"] == {"code": "card_declined", "message": "The card was declined."}
    [body] = wait_notified(simulator, receiver, payment["id"])
    assert body["failure"]["code"] == "card_declined" and body["is_paid"] is False


def test_3ds_right_code_pays_with_is_3ds(http, simulator, receiver):
    payment = create(http, simulator, receiver)
    answer = submit(http, payment, card="4000000000003220")
    assert answer.status_code == 303
    challenge_url = answer.headers["Location"]
    assert challenge_url == f"{payment['hosted_payment']['payment_url']}/3ds"
    assert simulator.payments[payment["id"]]["is_paid"] is False
    challenge = http.get(challenge_url, timeout=5)
    assert challenge.status_code == 200
    assert 'name="code"' in challenge.text and "1234" in challenge.text and 'method="post"' in challenge.text
    answer = http.post(challenge_url, data={"code": "1234"}, allow_redirects=False, timeout=5)
    assert answer.status_code == 303 and answer.headers["Location"] == RETURN_URL
    paid = fetch(http, simulator, payment["id"])
    assert paid["is_paid"] is True and paid["is_3ds"] is True
    bodies = wait_notified(simulator, receiver, payment["id"])
    assert simulator.notifier.wait_idle(timeout=5)
    assert [b["is_paid"] for b in receiver.bodies(payment["id"])] == [True]  # nothing sent before the answer
    assert bodies[0]["is_3ds"] is True


def test_3ds_wrong_code_fails(http, simulator, receiver):
    payment = create(http, simulator, receiver)
    challenge_url = submit(http, payment, card="4000000000003220").headers["Location"]
    answer = http.post(challenge_url, data={"code": "0000"}, allow_redirects=False, timeout=5)
    assert answer.status_code == 303 and answer.headers["Location"] == RETURN_URL
    failed = fetch(http, simulator, payment["id"])
    assert failed["is_paid"] is False and failed["failure"]["code"] == "3ds_declined"
    [body] = wait_notified(simulator, receiver, payment["id"])
    assert body["failure"]["code"] == "3ds_declined"
    again = http.post(challenge_url, data={"code": "1234"}, allow_redirects=False, timeout=5)
    assert again.status_code == 409
    assert simulator.payments[payment["id"]]["is_paid"] is False


def test_force_3ds_sends_the_success_card_through_the_challenge(http, simulator, receiver):
    payment = create(http, simulator, receiver, force_3ds=True)
    assert simulator.created_with[payment["id"]]["force_3ds"] is True
    answer = submit(http, payment, card="4242424242424242")
    assert answer.headers["Location"].endswith(f"/pay/{payment['id']}/3ds")
    assert simulator.submit_3ds(payment["id"], "1234") == "paid"
    assert simulator.payments[payment["id"]]["is_3ds"] is True


def test_cancel_redirects_to_cancel_url_and_notifies(http, simulator, receiver):
    payment = create(http, simulator, receiver)
    answer = submit(http, payment, action="cancel", card="")
    assert answer.status_code == 303 and answer.headers["Location"] == CANCEL_URL
    failure = fetch(http, simulator, payment["id"])["failure"]
    assert failure == {"code": "aborted", "message": "The buyer cancelled."}
    [body] = wait_notified(simulator, receiver, payment["id"])
    assert body["failure"]["code"] == "aborted"


def test_second_submission_is_409_and_changes_nothing(http, simulator, receiver):
    payment = create(http, simulator, receiver)
    assert submit(http, payment, card="4000000000000002").status_code == 303
    wait_notified(simulator, receiver, payment["id"])
    # the shop has the body before the simulator records its answer (notification.response_code)
    assert simulator.notifier.wait_idle(timeout=5)
    before = fetch(http, simulator, payment["id"])
    again = submit(http, payment, card="4242424242424242")
    assert again.status_code == 409
    assert fetch(http, simulator, payment["id"]) == before
    assert simulator.notifier.wait_idle(timeout=5)
    assert len(receiver.bodies(payment["id"])) == 1


def test_bad_expiry_rerenders_the_form(http, simulator, receiver):
    payment = create(http, simulator, receiver)
    answer = submit(http, payment, expiry="13/30")
    assert answer.status_code == 400 and 'name="card_number"' in answer.text
    assert simulator.payments[payment["id"]]["is_paid"] is False
    assert simulator.payments[payment["id"]]["failure"] is None


# ---------------------------------------------------------------------------------------------- deferred, abort
def test_deferred_payment_is_authorized_then_captured(http, simulator, receiver):
    payment = create(http, simulator, receiver, amount=None, authorized_amount=5000)
    assert payment["amount"] == 5000 and payment["authorized_amount"] == 5000
    too_early = api(http, simulator, "PATCH", f"/v1/payments/{payment['id']}", body={"captured": True})
    assert too_early.status_code == 400 and too_early.json()["object"] == "error"
    assert submit(http, payment).headers["Location"] == RETURN_URL
    authorized = fetch(http, simulator, payment["id"])
    assert authorized["is_paid"] is False and authorized["paid_at"] is None
    authorization = authorized["authorization"]
    assert authorization["authorized_amount"] == 5000
    assert authorization["expires_at"] - authorization["authorized_at"] == 7 * 24 * 3600
    [first] = wait_notified(simulator, receiver, payment["id"])
    assert first["authorization"]["authorized_amount"] == 5000 and first["is_paid"] is False
    refund = api(http, simulator, "POST", f"/v1/payments/{payment['id']}/refunds", body={"amount": 100})
    assert refund.status_code == 400

    captured = api(http, simulator, "PATCH", f"/v1/payments/{payment['id']}", body={"captured": True})
    assert captured.status_code == 200
    assert captured.json()["is_paid"] is True and isinstance(captured.json()["paid_at"], int)
    bodies = wait_notified(simulator, receiver, payment["id"], count=2)
    assert bodies[-1]["is_paid"] is True
    twice = api(http, simulator, "PATCH", f"/v1/payments/{payment['id']}", body={"captured": True})
    assert twice.status_code == 400


def test_abort_unpaid_and_refuse_abort_paid(http, simulator, receiver):
    unpaid = create(http, simulator, receiver)
    not_deferred = api(http, simulator, "PATCH", f"/v1/payments/{unpaid['id']}", body={"captured": True})
    assert not_deferred.status_code == 400
    aborted = api(http, simulator, "PATCH", f"/v1/payments/{unpaid['id']}", body={"aborted": True})
    assert aborted.status_code == 200 and aborted.json()["failure"]["code"] == "aborted"
    [body] = wait_notified(simulator, receiver, unpaid["id"])
    assert body["failure"]["code"] == "aborted"
    assert submit(http, unpaid).status_code == 409

    paid = create(http, simulator, receiver)
    assert simulator.pay(paid["id"]) == "paid"
    refused = api(http, simulator, "PATCH", f"/v1/payments/{paid['id']}", body={"aborted": True})
    assert refused.status_code == 400 and refused.json()["object"] == "error"
    assert simulator.payments[paid["id"]]["failure"] is None
    nothing = api(http, simulator, "PATCH", f"/v1/payments/{paid['id']}", body={})
    assert nothing.status_code == 400


# ---------------------------------------------------------------------------------------------- refunds
def test_partial_then_full_refund(http, simulator, receiver):
    payment = create(http, simulator, receiver, amount=1000)
    path = f"/v1/payments/{payment['id']}/refunds"
    assert api(http, simulator, "POST", path, body={"amount": 100}).status_code == 400  # not paid yet
    assert simulator.pay(payment["id"]) == "paid"
    wait_notified(simulator, receiver, payment["id"])

    first = api(http, simulator, "POST", path, body={"amount": 400, "metadata": {"why": "broken"}})
    assert first.status_code == 201
    refund = first.json()
    assert refund["id"].startswith("re_") and refund["object"] == "refund"
    assert refund["amount"] == 400 and refund["currency"] == "EUR" and refund["payment_id"] == payment["id"]
    assert refund["is_live"] is False and refund["metadata"] == {"why": "broken"}
    assert isinstance(refund["created_at"], int)
    after_first = fetch(http, simulator, payment["id"])
    assert after_first["amount_refunded"] == 400 and after_first["is_refunded"] is False
    [notified] = wait_notified(simulator, receiver, refund["id"])
    assert notified == refund

    for amount in (601, 0, -5, 12.5):
        over = api(http, simulator, "POST", path, body={"amount": amount})
        assert over.status_code == 400, amount
        assert over.json()["object"] == "error"
    assert fetch(http, simulator, payment["id"])["amount_refunded"] == 400

    rest = api(http, simulator, "POST", path, body={})
    assert rest.status_code == 201 and rest.json()["amount"] == 600
    final = fetch(http, simulator, payment["id"])
    assert final["amount_refunded"] == 1000 and final["is_refunded"] is True
    assert api(http, simulator, "POST", path, body={"amount": 1}).status_code == 400

    listing = api(http, simulator, "GET", path).json()
    assert listing["object"] == "list"
    assert [r["amount"] for r in listing["data"]] == [400, 600]
    one = api(http, simulator, "GET", f"{path}/{refund['id']}")
    assert one.status_code == 200 and one.json() == refund
    assert api(http, simulator, "GET", f"{path}/re_unknown").status_code == 404
    assert api(http, simulator, "GET", f"{path}/{refund['id']}", key=LIVE_KEY).status_code == 404


# ---------------------------------------------------------------------------------------------- notifier
def test_notification_retried_after_500_then_delivered(http, simulator, receiver):
    receiver.fail_next = 1
    payment = create(http, simulator, receiver)
    assert simulator.pay(payment["id"]) == "paid"
    [delivery] = [d for d in simulator.notifier.deliveries if payment["id"].encode() in d.body]
    assert simulator.notifier.wait_until(lambda: len(delivery.attempts) == 1)
    assert delivery.attempts == [(500, None)] and not delivery.delivered and not delivery.gave_up
    assert simulator.payments[payment["id"]]["notification"]["response_code"] == 500
    assert simulator.notifier.wait_idle(timeout=0.2) is False  # waiting 30 s for its retry

    simulator.notifier.retry_now()
    assert simulator.notifier.wait_until(lambda: delivery.delivered)
    assert delivery.attempts == [(500, None), (200, None)]
    assert simulator.payments[payment["id"]]["notification"]["response_code"] == 200
    assert len(receiver.bodies(payment["id"])) == 2


def test_notifier_gives_up_on_an_unreachable_shop():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    notifier = Notifier(retry_delays=(30,), timeout=2)
    try:
        delivery = notifier.send(f"http://127.0.0.1:{port}/notify", b"{}", {"Content-Type": "application/json"})
        assert notifier.wait_until(lambda: len(delivery.attempts) == 1)
        status, error = delivery.attempts[0]
        assert status is None and error
        notifier.retry_now()
        assert notifier.wait_until(lambda: delivery.gave_up)
        assert len(delivery.attempts) == 2 and delivery.delivered is False
        assert notifier.wait_idle(timeout=1)
    finally:
        notifier.close()


def test_paused_notifier_holds_notifications(http, simulator, receiver):
    payment = create(http, simulator, receiver)
    simulator.notifier.paused = True
    assert simulator.pay(payment["id"], card="4000000000000002") == "card_declined"
    delivery = simulator.notifier.deliveries[-1]
    assert simulator.notifier.wait_until(lambda: delivery.attempts, timeout=0.3) is False
    assert receiver.bodies(payment["id"]) == []
    simulator.notifier.paused = False
    [body] = wait_notified(simulator, receiver, payment["id"])
    assert body["failure"]["code"] == "card_declined"
    assert delivery.delivered


def test_python_helpers_pay_3ds_notify_and_reset(http, simulator, receiver):
    payment = create(http, simulator, receiver)
    assert simulator.pay(payment["id"], card="4000000000003220") == "3ds_required"
    assert simulator.submit_3ds(payment["id"], "1234") == "paid"
    wait_notified(simulator, receiver, payment["id"])
    delivery = simulator.notify(payment["id"])
    assert simulator.notifier.wait_until(lambda: delivery.delivered)
    assert [b["is_paid"] for b in receiver.bodies(payment["id"])] == [True, True]
    declined = create(http, simulator, receiver)
    assert simulator.pay(declined["id"], card="4000000000003220", code="9999") == "3ds_declined"
    simulator.reset()
    assert simulator.payments == {}
    assert api(http, simulator, "GET", f"/v1/payments/{payment['id']}").status_code == 404


def test_create_simulator_registry_and_format_euros():
    sim = create_simulator("payplug", retry_delays=(1,))
    try:
        assert isinstance(sim, PayPlugSimulator) and sim.name == "payplug"
        assert set(sim.accounts) == {"sk_test_simulator", "sk_live_simulator"}
    finally:
        sim.close()
    with pytest.raises(KeyError):
        create_simulator("nope")
    assert format_euros(99) == "0.99 EUR"
    assert format_euros(2_000_000) == "20,000.00 EUR"
    assert format_euros(1005) == "10.05 EUR"
