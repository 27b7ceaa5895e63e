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


def test_the_example_shop_speaks_french_and_has_a_stylesheet_and_every_page_a_favicon(make_shop):
    import requests

    shop = make_shop()
    french = requests.get(shop.url + "/", headers={"Accept-Language": "fr-FR,fr;q=0.9"}, timeout=10).text
    assert '<html lang="fr">' in french and ">Ajouter au panier<" in french and "14,50\u00a0€" in french
    english = requests.get(shop.url + "/", headers={"Accept-Language": "en"}, timeout=10).text
    assert ">Add to cart<" in english and "€14.50" in english
    css = re.search(r'<link rel="stylesheet" href="([^"]+)"', english).group(1)
    assert requests.get(shop.url + css, timeout=10).headers["Content-Type"].startswith("text/css")
    buyer = shop.buyer()
    ref = buyer.place_order()
    for page in (english, buyer.http.get(f"{shop.url}/psp/checkout/{ref}", timeout=10).text):
        icon = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page).group(1)
        answer = requests.get(shop.url + icon, timeout=10)
        assert answer.status_code == 200 and answer.text.startswith("<svg")


def test_a_french_buyer_meets_the_simulated_hosted_page_in_french(make_shop):
    shop = make_shop()
    buyer = shop.buyer("fr")
    ref = buyer.place_order()
    answer = buyer.choose(ref)
    assert answer.status_code == 303
    page = buyer.http.get(answer.headers["Location"], timeout=10).text
    assert '<html lang="fr">' in page and "Numéro de carte" in page and ">Payer 14.50" in page
    english = shop.buyer("en")
    ref = english.place_order()
    page = english.http.get(english.choose(ref).headers["Location"], timeout=10).text
    assert '<html lang="en">' in page and "Card number" in page


def test_every_simulator_page_follows_the_language_it_is_given():
    from flask_psp.simulator.page import render_page

    french = render_page("Payment", brand="Adyen", note="no real card is charged.", lang="fr-FR", form=True,
                         amount="12.00 EUR", detail="pay_1 · test mode", cards=(("4111", "success"),))
    assert "<h1>Paiement</h1>" in french and "Annuler" in french and "pay_1 · mode test" in french
    assert "aucune vraie carte" in french
    assert "<h1>Payment</h1>" in render_page("Payment", brand="Adyen", note="n", lang="en-GB")
