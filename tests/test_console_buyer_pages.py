"""Buyer result pages lead back to the shop, and promise an e-mail only when one will be sent."""

from __future__ import annotations

import re


def test_the_result_page_links_back_to_the_shop_and_promises_no_mail_that_will_not_come(make_shop):
    shop = make_shop(PSP_SHOP_URL="https://shop.example/orders/{order_ref}")
    buyer = shop.buyer()
    ref = buyer.place_order()
    answer = buyer.choose(ref)
    assert answer.status_code == 303
    payment = shop.payments(ref)[0]
    pending = buyer.http.get(f"{shop.url}/psp/return/{payment['token']}", timeout=10)
    assert pending.status_code == 200 and 'data-status="pending"' in pending.text
    assert f'href="https://shop.example/orders/{ref}" id="psp-back-to-shop">Back to the shop<' in pending.text
    note = re.search(r'<p id="psp-pending-note">(.*?)</p>', pending.text).group(1)
    assert note == "This page updates by itself."  # no MAIL_SERVER: no mail is promised
    paid = buyer.pay_on_payplug(answer.headers["Location"])
    assert 'data-status="paid"' in paid.text and 'id="psp-back-to-shop"' in paid.text
    french_buyer = shop.buyer("fr")
    french_ref = french_buyer.place_order()
    assert french_buyer.choose(french_ref).status_code == 303
    french_token = shop.payments(french_ref)[0]["token"]
    french = french_buyer.http.get(f"{shop.url}/psp/return/{french_token}", timeout=10).text
    assert ">Retour à la boutique<" in french


def test_the_pending_page_promises_a_mail_when_buyer_receipts_are_sent(make_shop):
    from flask_psp.models import PageSettings

    shop = make_shop(MAIL_SERVER="127.0.0.1", MAIL_PORT=9)
    with shop.app.app_context():
        db = shop.app.extensions["psp"].db
        db.session.add(PageSettings(messages={}, provider_look={}, notifications={"buyer_receipt": True}))
        db.session.commit()
    buyer = shop.buyer()
    ref = buyer.place_order()
    assert buyer.choose(ref).status_code == 303
    token = shop.payments(ref)[0]["token"]
    pending = buyer.http.get(f"{shop.url}/psp/return/{token}", timeout=10).text
    assert "You can also close it: you will be told by email." in pending
    assert f'href="/orders/{ref}" id="psp-back-to-shop"' in pending  # the example shop's own PSP_SHOP_URL
