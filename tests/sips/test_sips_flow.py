"""Worldline Sips end to end over HTTP: the example shop, the Sips simulator on loopback, a buyer going
through the Paypage forms, the sealed response arriving twice (browser and server)."""

from __future__ import annotations

from urllib.parse import urlencode, urljoin

import pytest
import requests

from flask_psp.providers.sips import compute_seal, decode_data, encode_data

from .conftest import (
    CARD_3DS,
    CARD_OK,
    CARD_REFUSED,
    back_to_shop,
    go_to_sips,
    only_payment,
    page_parts,
    pay_on_sips,
    response_form,
    sips_settings,
)


def all_delivered(sim):
    return sim.notifier.wait_until(lambda: all(d.delivered for d in sim.notifier.deliveries), timeout=10)


def test_buyer_pays_and_both_responses_apply_once(make_shop, sim, heard):
    shop = make_shop(psp_providers=sips_settings(sim))
    buyer = shop.buyer()
    ref, sips_page, posted = go_to_sips(shop, buyer, sku="PEN-04", quantity=2)
    assert posted["SealAlgorithm"] == "HMAC-SHA-256" and posted["InterfaceVersion"].startswith("HP_")
    sent = sim.init_requests[-1]["fields"]
    payment = only_payment(shop, ref)
    assert sent["amount"] == "17000" and sent["currencyCode"] == "978"
    assert sent["merchantId"] == "002001000000001" and sent["keyVersion"] == "1"
    assert sent["normalReturnUrl"] == f"{shop.url}/psp/return/{payment['token']}"
    assert sent["automaticResponseUrl"] == f"{shop.url}/psp/notify/sips"
    assert sent["transactionReference"].isalnum() and sent["transactionReference"] == payment["psp_reference"]
    assert (sent["orderChannel"], sent["captureMode"], sent["captureDay"]) == ("INTERNET", "AUTHOR_CAPTURE", "0")
    assert sent["customerLanguage"] == "en" and sent["fraudData.challengeMode3DS"] == "NO_PREFERENCE"

    receipt = pay_on_sips(buyer, sips_page)
    assert 'data-response-code="00"' in receipt.text
    assert all_delivered(sim)  # the automatic response
    assert shop.order(ref)["status"] == "paid"
    back = back_to_shop(receipt.text)  # then the buyer's browser, without cookies
    assert back.status_code == 200 and 'data-status="paid"' in back.text
    payment = only_payment(shop, ref)
    assert payment["status"] == "paid" and payment["captured_amount"] == 17000
    assert heard == [ref]
    applied = [e for e in shop.events() if e["outcome"] == "applied"]
    assert len(applied) == 1 and applied[0]["dedupe_key"].startswith("sips:002001000000001:")


def test_browser_return_without_cookies_shows_paid_before_the_server_response(make_shop, sim, heard):
    shop = make_shop(psp_providers=sips_settings(sim))
    buyer = shop.buyer(accept_language="fr-FR,fr;q=0.9")
    ref, sips_page, _ = go_to_sips(shop, buyer)
    assert sim.init_requests[-1]["fields"]["customerLanguage"] == "fr"
    sim.notifier.paused = True  # Sips' server is late
    receipt = pay_on_sips(buyer, sips_page)
    back = back_to_shop(receipt.text, accept_language="en")  # no session cookie reaches the shop
    assert back.status_code == 200
    assert 'data-status="paid"' in back.text and "payé" in back.text  # the buyer's language, from the payment
    assert shop.order(ref)["status"] == "paid"
    sim.notifier.paused = False
    assert all_delivered(sim)
    outcomes = [e["outcome"] for e in shop.events()]
    assert outcomes.count("applied") == 1 and outcomes.count("duplicate") == 1
    assert heard == [ref]


def test_refused_card_fails_with_the_codes_kept_for_the_merchant(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim))
    buyer = shop.buyer()
    ref, sips_page, _ = go_to_sips(shop, buyer)
    receipt = pay_on_sips(buyer, sips_page, card=CARD_REFUSED)
    back = back_to_shop(receipt.text)
    assert 'data-status="failed"' in back.text
    payment = only_payment(shop, ref)
    assert payment["status"] == "failed"
    assert "responseCode 05" in payment["failure_reason"] and "acquirerResponseCode 05" in payment["failure_reason"]
    assert shop.order(ref)["status"] == "pending"
    assert all_delivered(sim)
    assert only_payment(shop, ref)["status"] == "failed"


def test_buyer_cancels_on_the_payment_page(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim))
    buyer = shop.buyer()
    ref, sips_page, _ = go_to_sips(shop, buyer)
    receipt = pay_on_sips(buyer, sips_page, action="cancel")
    assert 'data-response-code="17"' in receipt.text
    back = back_to_shop(receipt.text)
    assert 'data-status="cancelled"' in back.text
    assert only_payment(shop, ref)["status"] == "cancelled"
    assert "responseCode 17" in only_payment(shop, ref)["failure_reason"]
    assert shop.order(ref)["status"] == "pending"


@pytest.mark.parametrize("code, status", [("1234", "paid"), ("0000", "failed")])
def test_three_d_secure_challenge_when_the_merchant_asks_for_it(make_shop, sim, code, status):
    shop = make_shop(psp_providers=sips_settings(sim, three_ds="always"))
    buyer = shop.buyer()
    ref, sips_page, _ = go_to_sips(shop, buyer)
    assert sim.init_requests[-1]["fields"]["fraudData.challengeMode3DS"] == "CHALLENGE"
    receipt = pay_on_sips(buyer, sips_page, card=CARD_OK, code=code)
    fields = decode_data(response_form(receipt.text)["fields"]["Data"])
    assert fields["holderAuthentStatus"] == ("SUCCESS" if status == "paid" else "FAILURE")
    back = back_to_shop(receipt.text)
    assert f'data-status="{status}"' in back.text
    assert only_payment(shop, ref)["status"] == status


def test_issuer_challenge_without_a_merchant_preference(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim, three_ds="frictionless"))
    buyer = shop.buyer()
    ref, sips_page, _ = go_to_sips(shop, buyer)
    assert sim.init_requests[-1]["fields"]["fraudData.challengeMode3DS"] == "NO_CHALLENGE"
    receipt = pay_on_sips(buyer, sips_page, card=CARD_3DS, code="1234")
    assert all_delivered(sim)
    assert only_payment(shop, ref)["status"] == "paid"
    assert 'data-status="paid"' in back_to_shop(receipt.text).text


def test_sha256_seal_when_the_merchant_chose_it(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim, seal_algorithm="SHA-256"))
    buyer = shop.buyer()
    ref, sips_page, posted = go_to_sips(shop, buyer)
    assert "SealAlgorithm" not in posted  # without it Sips reads the seal as SHA-256
    assert posted["Seal"] == compute_seal(posted["Data"], "002001000000001_KEY1", "SHA-256")
    receipt = pay_on_sips(buyer, sips_page)
    response = response_form(receipt.text)["fields"]
    assert response["Seal"] == compute_seal(response["Data"], "002001000000001_KEY1", "SHA-256")
    assert 'data-status="paid"' in back_to_shop(receipt.text).text


def test_wrong_secret_key_shows_sips_error_page_and_changes_nothing(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim, secret_key="not-the-merchant-key"))
    buyer = shop.buyer()
    ref, sips_page, _ = go_to_sips(shop, buyer)
    assert sips_page.status_code == 400
    assert "responseCode=34" in sips_page.text and "Seal" in sips_page.text
    assert not sim.notifier.deliveries and not sim.transactions
    assert only_payment(shop, ref)["status"] == "pending"


def test_wrong_key_version_is_reported_clearly(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim, key_version="2"))
    buyer = shop.buyer()
    ref, sips_page, _ = go_to_sips(shop, buyer)
    assert 'data-response-code="34"' in sips_page.text
    assert all_delivered(sim)
    payment = only_payment(shop, ref)
    assert payment["status"] == "failed"
    reason = payment["failure_reason"]
    assert "responseCode 34" in reason
    assert "key_version setting (2) does not match the secret key" in reason and "set key_version to 1" in reason
    back = back_to_shop(sips_page.text)
    assert 'data-status="failed"' in back.text


def test_forged_or_tampered_responses_are_refused_and_change_nothing(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim))
    buyer = shop.buyer()
    ref, sips_page, _ = go_to_sips(shop, buyer)
    sim.notifier.paused = True
    receipt = pay_on_sips(buyer, sips_page, card=CARD_REFUSED)
    genuine = response_form(receipt.text)["fields"]
    fields = decode_data(genuine["Data"])
    fields["responseCode"], fields["acquirerResponseCode"] = "00", "00"
    tampered = {**genuine, "Data": encode_data(fields.items())}
    notify = shop.notify_url("sips")
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    assert requests.post(notify, data=urlencode(tampered), headers=form, timeout=10).status_code == 403
    forged_seal = {**tampered, "Seal": compute_seal(tampered["Data"], "someone-elses-key", "HMAC-SHA-256")}
    assert requests.post(notify, data=urlencode(forged_seal), headers=form, timeout=10).status_code == 403
    unsealed = {k: v for k, v in tampered.items() if k != "Seal"}
    assert requests.post(notify, data=urlencode(unsealed), headers=form, timeout=10).status_code == 403
    browser = requests.post(response_form(receipt.text)["action"], data=tampered, timeout=10)
    assert browser.status_code == 200 and 'data-status="pending"' in browser.text

    assert only_payment(shop, ref)["status"] == "pending"
    assert shop.order(ref)["status"] == "pending"
    rejected = [e for e in shop.events() if e["outcome"] == "rejected"]
    assert len(rejected) == 3 and all(e["verified"] is False for e in rejected)
    sim.notifier.paused = False
    assert all_delivered(sim)
    assert only_payment(shop, ref)["status"] == "failed"  # the genuine response still counts


def test_repeated_automatic_response_is_a_duplicate(make_shop, sim, heard):
    shop = make_shop(psp_providers=sips_settings(sim))
    buyer = shop.buyer()
    ref, sips_page, _ = go_to_sips(shop, buyer)
    pay_on_sips(buyer, sips_page)
    assert all_delivered(sim)
    sim.resend_automatic_response(only_payment(shop, ref)["psp_reference"])
    assert all_delivered(sim) and len(sim.notifier.deliveries) == 2
    outcomes = [e["outcome"] for e in shop.events()]
    assert outcomes == ["applied", "duplicate"]
    assert heard == [ref]


def test_a_plain_visit_of_the_return_page_proves_nothing(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim))
    buyer = shop.buyer()
    ref, _, _ = go_to_sips(shop, buyer)
    token = only_payment(shop, ref)["token"]
    page = requests.get(f"{shop.url}/psp/return/{token}", timeout=10)
    assert page.status_code == 200 and 'data-status="pending"' in page.text
    assert requests.get(f"{shop.url}/psp/return/not-a-real-token-at-all", timeout=10).status_code == 404


@pytest.mark.parametrize("algorithm", ["HMAC-SHA-256", "SHA-256"])
def test_the_checkout_forms_own_sealed_request_posted_back_moves_nothing(make_shop, sim, heard, algorithm):
    """The checkout form's Data/Seal is sealed with the merchant's key, like Sips' response; posted back to
    the return page or the notification URL it is still our request (no responseCode), not Sips' answer."""
    shop = make_shop(psp_providers=sips_settings(sim, seal_algorithm=algorithm))
    buyer = shop.buyer()
    ref, sips_page, posted = go_to_sips(shop, buyer)
    payment = only_payment(shop, ref)
    assert "responseCode" not in decode_data(posted["Data"])

    back = requests.post(f"{shop.url}/psp/return/{payment['token']}", data=posted, timeout=10)
    assert back.status_code == 200 and 'data-status="pending"' in back.text
    assert only_payment(shop, ref)["status"] == "pending" and only_payment(shop, ref)["failure_reason"] is None
    notified = requests.post(shop.notify_url("sips"), data=posted, timeout=10)
    assert notified.status_code == 403
    assert only_payment(shop, ref)["status"] == "pending"
    (row,) = shop.events()
    assert (row["outcome"], row["verified"]) == ("rejected", False)

    pay_on_sips(buyer, sips_page)  # the buyer can still pay
    assert all_delivered(sim)
    assert only_payment(shop, ref)["status"] == "paid" and heard == [ref]


def test_checkout_answers_a_self_submitting_form_with_a_button_for_browsers_without_scripts(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim))
    buyer = shop.buyer()
    ref = buyer.place_order()
    page = buyer.choose(ref, provider="sips")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    parts = page_parts(page.text)
    (form,) = [f for f in parts.forms if f["id"] == "psp-redirect"]
    assert form["method"].lower() == "post" and form["action"] == sim.url + "/paymentInit"
    assert set(form["fields"]) == {"Data", "Seal", "InterfaceVersion", "SealAlgorithm"}
    (button,) = form["buttons"]
    assert button.get("type") == "submit" and "hidden" not in button and "disabled" not in button
    (script,) = [s for s in parts.scripts if s.get("id") == "psp-autosubmit"]
    code = requests.get(urljoin(page.url, script["src"]), timeout=10).text
    assert 'getElementById("psp-redirect")' in code and ".submit()" in code
    # what the button (or the script) posts reaches Sips' payment page
    sips_page = buyer.http.post(form["action"], data=form["fields"], timeout=10)
    assert sips_page.status_code == 200 and 'name="card_number"' in sips_page.text
    assert only_payment(shop, ref)["status"] == "pending"


def save_page_settings(shop, **fields):
    from example_shop import db
    from flask_psp.admin.page import page_form, save_page

    with shop.app.app_context():
        assert save_page(db.session, page_form(["en", "fr"], fields), "owner@example.com", ["en", "fr"]) == []


def test_the_page_settings_choose_the_sips_template(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim))
    save_page_settings(shop, brand_name="Atelier", sips_template_name="atelier_v2")
    ref, sips_page, _ = go_to_sips(shop, shop.buyer())
    assert sim.init_requests[-1]["fields"]["templateName"] == "atelier_v2"
    assert "Page template: atelier_v2" in sips_page.text

