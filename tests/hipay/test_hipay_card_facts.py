"""What HiPay says of the card reaches the payment's page: brand, last four digits, 3-D Secure."""

from __future__ import annotations

from .conftest import CARD_OK, all_delivered, go_to_hipay, hipay_settings, only_payment, pay_on_hipay


def card_of(shop, ref):
    from example_shop import psp

    with shop.app.app_context():
        return (psp.payments_for(ref)[0].extra or {}).get("card")


def test_a_challenged_payment_shows_the_card_and_its_3ds_outcome(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim, three_ds="always"))
    buyer = shop.buyer()
    ref, page_url = go_to_hipay(shop, buyer)
    pay_on_hipay(buyer, page_url, card=CARD_OK, code="1234")
    assert all_delivered(sim)
    assert only_payment(shop, ref)["status"] == "paid"
    assert card_of(shop, ref) == {"brand": "VISA", "last4": "1111", "three_ds": "authenticated"}


def test_without_3ds_hipay_says_nothing_of_it_and_nothing_is_made_up(make_shop, sim):
    shop = make_shop(psp_providers=hipay_settings(sim))
    buyer = shop.buyer()
    ref, page_url = go_to_hipay(shop, buyer)
    pay_on_hipay(buyer, page_url, card=CARD_OK)
    assert all_delivered(sim)
    assert card_of(shop, ref) == {"brand": "VISA", "last4": "1111"}
