"""HiPay's transaction information service (hipay/openapi-hipay ``enterprise/gateway.yaml``:
``GET /v1/transaction?orderid=…`` and ``GET /v1/transaction/{transaction_reference}``), as the
simulator answers it and as the plugin reads it."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from flask_psp.providers.base import EventKind, MalformedNotification, ProviderConfig, ProviderError
from flask_psp.providers.hipay import HiPayProvider

from .conftest import CARD_OK, CARD_REFUSED, PASSWORD, USER, go_to_hipay, hipay_settings, pay_on_hipay


def ask(sim, path, auth=(USER, PASSWORD), **params):
    return requests.get(f"{sim.url}{path}", params=params, auth=auth, headers={"Accept": "application/json"},
                        timeout=10)


def test_the_simulator_answers_the_transaction_information_service(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim))
    buyer = shop.buyer()
    ref, page = go_to_hipay(shop, buyer)
    (payment,) = shop.payments(ref)

    refused = ask(sim, "/v1/transaction", auth=(USER, "wrong"), orderid=payment["token"])
    assert refused.status_code == 401 and refused.json()["code"] == 1000001
    assert ask(sim, "/v1/transaction").status_code == 400
    unknown = ask(sim, "/v1/transaction", orderid="never-sent-to-hipay")
    assert (unknown.status_code, unknown.json()["code"], unknown.json()["message"]) == (404, 3000001, "Unknown Order")
    # the page exists, nobody paid on it yet: HiPay knows the order, not a transaction
    assert ask(sim, "/v1/transaction", orderid=payment["token"]).json() == {"transaction": []}

    pay_on_hipay(buyer, page, card=CARD_OK)
    one = ask(sim, "/v1/transaction", orderid=payment["token"])
    assert one.status_code == 200
    transaction = one.json()["transaction"]  # a single transaction comes as an object
    assert (transaction["state"], transaction["status"], transaction["message"]) == ("completed", "118", "Captured")
    assert (transaction["authorizedAmount"], transaction["capturedAmount"], transaction["refundedAmount"]) == \
        ("14.50", "14.50", "0.00")
    assert (transaction["currency"], transaction["order"]["id"], transaction["attemptId"]) == \
        ("EUR", payment["token"], "1")
    assert transaction["paymentMethod"]["pan"] == "411111******1111"

    by_reference = ask(sim, f"/v1/transaction/{transaction['transactionReference']}")
    assert by_reference.json() == {"transaction": transaction}
    missing = ask(sim, "/v1/transaction/800000000000")
    assert (missing.status_code, missing.json()["code"]) == (404, 3000002)
    assert ask(sim, f"/v1/transaction/{transaction['transactionReference']}", auth=(USER, "")).status_code == 401


def test_a_declined_transaction_carries_its_reason(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim))
    buyer = shop.buyer()
    ref, page = go_to_hipay(shop, buyer)
    pay_on_hipay(buyer, page, card=CARD_REFUSED)
    (payment,) = shop.payments(ref)
    transaction = ask(sim, "/v1/transaction", orderid=payment["token"]).json()["transaction"]
    assert (transaction["state"], transaction["status"]) == ("declined", "113")
    assert transaction["reason"] == {"code": "4010101", "message": "Refusal (No Explicit Reason)"}
    assert transaction["capturedAmount"] == "0.00"


class HiPayAnswers(requests.adapters.BaseAdapter):
    """Stands in for HiPay's gateway with one canned answer, to read answers the simulator never
    gives (several attempts for one order, a 404 from something that is not HiPay)."""

    def __init__(self, status: int, body):
        super().__init__()
        self.status, self.body, self.sent = status, body, []

    def send(self, request, **kwargs):
        self.sent.append(request)
        response = requests.Response()
        response.status_code = self.status
        response._content = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        response.headers["Content-Type"] = "text/html" if isinstance(self.body, bytes) else "application/json"
        response.url, response.request = request.url, request
        return response

    def close(self):
        pass


class Payment:
    token = "tok_ABC-123"
    currency = "EUR"


def fetch(status, body):
    answers = HiPayAnswers(status, body)
    http = requests.Session()
    http.mount("https://", answers)
    provider = HiPayProvider(ProviderConfig(name="hipay", mode="test", credentials={
        "api_username": "user", "api_password": "secret", "secret_passphrase": "pass"}), http)
    return provider.fetch(Payment()), answers.sent


def transaction(reference, status, attempt, captured="0.00"):
    return {"state": "completed", "transactionReference": reference, "status": status, "attemptId": attempt,
            "authorizedAmount": "14.50", "capturedAmount": captured, "refundedAmount": "0.00", "currency": "EUR",
            "order": {"id": "tok_ABC-123"}}


def test_the_lookup_asks_hipays_gateway_with_the_api_credentials():
    (message,), (sent,) = fetch(200, {"transaction": transaction("800000000002", "118", "1", "14.50")})
    assert sent.method == "GET"
    assert sent.url == "https://stage-secure-gateway.hipay-tpp.com/rest/v1/transaction?orderid=tok_ABC-123"
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"user:secret").decode()
    assert [e.kind for e in message.events] == [EventKind.CAPTURED]
    assert (message.events[0].captured_total, message.psp_reference, message.mode) == (1450, "800000000002", "test")
    # the very key of the notification of the same status: one of them is a duplicate of the other
    assert message.dedupe_key == "hipay:800000000002:118:1450:0"


def test_the_attempt_that_took_money_decides_an_order_of_several():
    refused = {**transaction("800000000001", "113", "1"), "state": "declined",
               "reason": {"code": "4010101", "message": "Refusal (No Explicit Reason)"}}
    paid = transaction("800000000002", "118", "2", "14.50")
    for answer in ([refused, paid], [paid, refused]):
        (message,), _ = fetch(200, {"transaction": answer})
        assert message.psp_reference == "800000000002" and message.events[0].kind is EventKind.CAPTURED
    # nothing reached an authorization: the latest attempt says how the order stands
    pending = {**transaction("800000000003", "142", "2"), "state": "pending"}
    (message,), _ = fetch(200, {"transaction": [pending, refused]})
    assert message.psp_reference == "800000000003" and message.events[0].kind is EventKind.PENDING
    (message,), _ = fetch(200, {"transaction": [refused]})
    assert message.events[0].kind is EventKind.FAILED
    assert message.events[0].reason == "HiPay status 113 (refused): Refusal (No Explicit Reason)"


def test_only_hipays_own_no_such_order_means_nothing_to_report():
    assert fetch(404, {"code": 3000001, "message": "Unknown Order"})[0] == []
    assert fetch(200, {"transaction": []})[0] == []
    assert fetch(200, {})[0] == []
    # another order's transaction in the answer proves nothing about this one
    assert fetch(200, {"transaction": {**transaction("800000000009", "118", "1"), "order": {"id": "other"}}})[0] == []
    with pytest.raises(ProviderError):  # a proxy's or a wrong path's 404 is not HiPay saying "no payment"
        fetch(404, b"<html>Not Found</html>")
    with pytest.raises(ProviderError, match="username or password"):
        fetch(401, {"code": 1000001, "message": "Incorrect Credentials"})
    with pytest.raises(ProviderError) as unavailable:
        fetch(503, {"code": 1000008, "message": "Temporarily Unavailable"})
    assert unavailable.value.retryable
    with pytest.raises(MalformedNotification):
        fetch(200, b"<html>maintenance</html>")
