"""What Adyen's AUTHORISATION webhook says of the card reaches the payment's page."""

from __future__ import annotations

from .conftest import CARD_3DS, CARD_SUCCESS, pay, start


def card_of(shop, ref):
    from example_shop import psp

    with shop.app.app_context():
        return (psp.payments_for(ref)[0].extra or {}).get("card")


def test_the_card_summary_and_3ds_of_the_authorisation_are_kept(adyen_shop, sim):
    shop = adyen_shop()
    buyer = shop.buyer()
    ref, page_url = start(buyer)
    pay(buyer, page_url, card=CARD_3DS)
    assert sim.notifier.wait_idle(timeout=10)
    assert card_of(shop, ref) == {"brand": "visa", "last4": CARD_3DS[-4:], "three_ds": "authenticated",
                                  "liability_shift": True}
    other = shop.buyer()
    ref, page_url = start(other)
    pay(other, page_url, card=CARD_SUCCESS)
    assert sim.notifier.wait_idle(timeout=10)
    assert card_of(shop, ref) == {"brand": "visa", "last4": CARD_SUCCESS[-4:], "three_ds": "not_authenticated",
                                  "liability_shift": False}
