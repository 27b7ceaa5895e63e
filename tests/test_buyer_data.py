"""PSD2 buyer data. Issuers decide 3-D Secure from what the merchant sends: ``OrderInfo`` carries
optional billing and shipping addresses and how the order is delivered, the example shop collects
them, each provider sends them under its documented field names, and each simulator refuses shapes
its PSP would not read. ``OrderInfo``'s positional order is a fixed contract: the new fields come
after the old ones."""

from __future__ import annotations

import dataclasses
import json

import pytest
import requests
from hypothesis import given, strategies as st

from flask_psp import DELIVERY_TYPES, Address, OrderInfo
from flask_psp.simulator.adyen import DEFAULT_HMAC_KEY, DEFAULT_MERCHANT, DEFAULT_TEST_KEY, AdyenSimulator
from flask_psp.simulator.hipay import HiPaySimulator
from flask_psp.simulator.paypal import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_WEBHOOK_ID, PayPalSimulator
from flask_psp.simulator.payplug import PayPlugSimulator
from flask_psp.simulator.sips import SIMULATION_MERCHANT, SipsSimulator
from tests.conftest import serving

BUYER = {
    "billing-first_name": "Ann", "billing-last_name": "Martin", "billing-company": "Atelier Martin",
    "billing-line1": "3 rue Neuve", "billing-line2": "Bât. B", "billing-postcode": "69001", "billing-city": "Lyon",
    "billing-country": "fr", "billing-phone": "+33 6 12 34 56 78",
    "delivery_type": "shipped", "ship_elsewhere": "1",
    "shipping-first_name": "Paul", "shipping-last_name": "Martin", "shipping-line1": "8 quai Gailleton",
    "shipping-postcode": "69002", "shipping-city": "Lyon", "shipping-country": "FR",
}

SIMULATORS = {
    "adyen": (AdyenSimulator, {"api_key": DEFAULT_TEST_KEY, "merchant_account": DEFAULT_MERCHANT,
                               "hmac_key": DEFAULT_HMAC_KEY}),
    "paypal": (PayPalSimulator, {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET,
                                 "webhook_id": DEFAULT_WEBHOOK_ID}),
    "payplug": (PayPlugSimulator, {"secret_key": "sk_test_simulator"}),
    "sips": (SipsSimulator, {"merchant_id": SIMULATION_MERCHANT, "secret_key": "002001000000001_KEY1",
                             "key_version": "1"}),
    "hipay": (HiPaySimulator, {"api_username": "hipay_sim_api_user", "api_password": "hipay_sim_api_password",
                               "secret_passphrase": "hipay-sim-passphrase"}),
}


def test_orderinfo_keeps_its_positional_order_and_adds_the_buyer_data_after_it():
    names = [f.name for f in dataclasses.fields(OrderInfo)]
    assert names == ["reference", "amount", "currency", "email", "description", "first_name", "last_name",
                     "address_line1", "address_line2", "postcode", "city", "country", "locale",
                     "billing", "shipping", "delivery_type"]
    old_style = OrderInfo("R-1", 1450, "eur", "a@example.com", "mug", "Ann", "Martin", "3 rue Neuve", None, "69001",
                          "Lyon", "FR", "fr")
    assert old_style.billing_address() == Address(first_name="Ann", last_name="Martin", line1="3 rue Neuve",
                                                  postcode="69001", city="Lyon", country="FR")
    with pytest.raises(ValueError, match="delivery_type"):
        OrderInfo("R-1", 1450, "EUR", delivery_type="by pigeon")
    assert set(DELIVERY_TYPES) == {"shipped", "digital", "pickup", "travel_or_event", "other"}


@given(country=st.text(max_size=4), phone=st.text(max_size=20))
def test_an_address_holds_an_alpha2_country_and_an_e164_phone_or_says_what_is_wrong(country, phone):
    try:
        address = Address(country=country, phone=phone)
    except ValueError as exc:
        assert "country" in str(exc) or "phone" in str(exc)
        return
    assert address.country is None or (len(address.country) == 2 and address.country.isupper())
    assert address.phone is None or (address.phone[0] == "+" and address.phone[1:].isdigit())


@pytest.fixture
def psp_sim(request):
    cls, _credentials = SIMULATORS[request.param]
    yield from serving(cls(retry_delays=(30, 60, 120)))


def received(name, sim):
    """What the simulated PSP received to open the payment page."""
    if name == "adyen":
        (session,) = sim.sessions.values()
        return session["request"]
    if name == "paypal":
        (order,) = sim.orders.values()
        return {"unit": order["unit"], "source": order["source"], "context": order["context"]}
    if name == "payplug":
        (body,) = sim.created_with.values()
        return body
    if name == "sips":
        return sim.init_requests[-1]["fields"]
    (order,) = sim.orders.values()
    return order["fields"]


EXPECTED = {
    "adyen": lambda got: (
        got["billingAddress"] == {"street": "3 rue Neuve", "houseNumberOrName": "Bât. B", "postalCode": "69001",
                                  "city": "Lyon", "country": "FR"}
        and got["deliveryAddress"] == {"street": "8 quai Gailleton", "houseNumberOrName": "", "postalCode": "69002",
                                       "city": "Lyon", "country": "FR", "firstName": "Paul", "lastName": "Martin"}
        and got["shopperName"] == {"firstName": "Ann", "lastName": "Martin"}
        and got["telephoneNumber"] == "+33612345678" and got["company"] == {"name": "Atelier Martin"}),
    "paypal": lambda got: (
        got["source"]["name"] == {"given_name": "Ann", "surname": "Martin"}
        and got["source"]["address"] == {"address_line_1": "3 rue Neuve", "address_line_2": "Bât. B",
                                         "admin_area_2": "Lyon", "postal_code": "69001", "country_code": "FR"}
        and got["unit"]["shipping"] == {"type": "SHIPPING", "name": {"full_name": "Paul Martin"},
                                        "address": {"address_line_1": "8 quai Gailleton", "admin_area_2": "Lyon",
                                                    "postal_code": "69002", "country_code": "FR"}}
        and got["context"]["shipping_preference"] == "SET_PROVIDED_ADDRESS"),
    "payplug": lambda got: (
        got["billing"] == {"email": "buyer@example.com", "language": "en", "first_name": "Ann", "last_name": "Martin",
                           "company_name": "Atelier Martin", "address1": "3 rue Neuve", "address2": "Bât. B",
                           "postcode": "69001", "city": "Lyon", "country": "FR",
                           "mobile_phone_number": "+33612345678"}
        and got["shipping"] == {"email": "buyer@example.com", "language": "en", "first_name": "Paul",
                                "last_name": "Martin", "address1": "8 quai Gailleton", "postcode": "69002",
                                "city": "Lyon", "country": "FR", "delivery_type": "NEW"}),
    "sips": lambda got: (
        {k: v for k, v in got.items() if k.split(".")[0] in ("customerContact", "billingAddress", "holderContact",
                                                              "deliveryAddress", "deliveryContact")} == {
            "customerContact.email": "buyer@example.com", "customerContact.firstname": "Ann",
            "customerContact.lastname": "Martin", "customerContact.phone": "+33612345678",
            "billingAddress.company": "Atelier Martin", "billingAddress.street": "3 rue Neuve",
            "billingAddress.addressAdditional1": "Bât. B", "billingAddress.zipCode": "69001",
            "billingAddress.city": "Lyon", "holderContact.email": "buyer@example.com",
            "holderContact.firstname": "Ann", "holderContact.lastname": "Martin",
            "holderContact.phone": "+33612345678", "deliveryAddress.street": "8 quai Gailleton",
            "deliveryAddress.zipCode": "69002", "deliveryAddress.city": "Lyon",
            "deliveryContact.firstname": "Paul", "deliveryContact.lastname": "Martin"}),
    "hipay": lambda got: (
        {k: got.get(k) for k in ("firstname", "lastname", "recipientinfo", "streetaddress", "streetaddress2",
                                 "zipcode", "city", "country", "phone", "shipto_firstname", "shipto_lastname",
                                 "shipto_streetaddress", "shipto_zipcode", "shipto_city", "shipto_country")} == {
            "firstname": "Ann", "lastname": "Martin", "recipientinfo": "Atelier Martin",
            "streetaddress": "3 rue Neuve", "streetaddress2": "Bât. B", "zipcode": "69001", "city": "Lyon",
            "country": "FR", "phone": "+33612345678", "shipto_firstname": "Paul", "shipto_lastname": "Martin",
            "shipto_streetaddress": "8 quai Gailleton", "shipto_zipcode": "69002", "shipto_city": "Lyon",
            "shipto_country": "FR"}),
}


@pytest.mark.parametrize("psp_sim", list(SIMULATORS), indirect=True)
def test_the_buyer_data_typed_in_the_shop_reaches_each_psp_under_its_documented_names(make_shop, psp_sim):
    name = psp_sim.name
    block = {**SIMULATORS[name][1], "endpoint": psp_sim.url}
    shop = make_shop(psp_providers={name: {"enabled": True, "mode": "test", "test": block}})
    buyer = shop.buyer()
    ref = buyer.place_order(**BUYER)
    answer = buyer.choose(ref, provider=name)
    assert answer.status_code in (200, 303), answer.text  # the simulator took the shapes (Sips: the form page)
    if name == "sips":  # the buyer's browser carries the form to Sips
        from tests.sips.conftest import forms

        (form,) = [f for f in forms(answer.text) if f["id"] == "psp-redirect"]
        assert requests.post(form["action"], data=form["fields"], timeout=10).status_code == 200
    assert EXPECTED[name](received(name, psp_sim)), received(name, psp_sim)


def test_the_shop_refuses_a_country_or_phone_no_psp_would_read(make_shop):
    shop = make_shop()
    buyer = shop.buyer()
    with pytest.raises(AssertionError, match="alpha-2"):
        buyer.place_order(**{"billing-country": "France"})
    with pytest.raises(AssertionError, match="E.164"):
        buyer.place_order(**{"billing-phone": "06 12"})


def test_digital_goods_and_pickup_say_so(make_shop):
    shop = make_shop()
    buyer = shop.buyer()
    digital = buyer.place_order(**{"delivery_type": "digital", "billing-country": "FR"})
    assert buyer.choose(digital).status_code == 303
    pickup = buyer.place_order(**{"delivery_type": "pickup", "billing-country": "FR"})
    assert buyer.choose(pickup).status_code == 303
    shipped_home = buyer.place_order(**{"delivery_type": "shipped", "billing-line1": "3 rue Neuve",
                                        "billing-country": "FR"})
    assert buyer.choose(shipped_home).status_code == 303
    sent = list(shop.sim.created_with.values())
    assert [body["shipping"]["delivery_type"] for body in sent] == ["DIGITAL_GOODS", "SHIP_TO_STORE", "BILLING"]
    assert sent[2]["shipping"]["address1"] == "3 rue Neuve"  # shipped to the billing address


@pytest.mark.parametrize(("name", "change", "refusal"), [
    ("payplug", lambda body: body["shipping"].update(delivery_type="COURIER"), "delivery_type"),
    ("payplug", lambda body: body["billing"].update(country="FRA"), "alpha-2"),
    ("payplug", lambda body: body["billing"].update(phone="+33612345678"), "Unknown field"),
])
def test_the_payplug_simulator_refuses_shapes_payplug_would_not_read(sim, name, change, refusal):
    body = {"amount": 1450, "currency": "EUR", "hosted_payment": {"return_url": "https://shop.example/r"},
            "billing": {"email": "a@example.com", "country": "FR"},
            "shipping": {"email": "a@example.com", "delivery_type": "BILLING"}}
    change(body)
    answer = requests.post(sim.url + "/v1/payments", data=json.dumps(body), timeout=10,
                           headers={"Authorization": "Bearer sk_test_simulator", "Content-Type": "application/json",
                                    "PayPlug-Version": "2019-08-06"})
    assert answer.status_code == 400 and refusal in answer.text
