"""What Sips' response says of the card reaches the payment's page: the brand and the cardholder's
authentication (its masked PAN shows two digits only: no last four)."""

from __future__ import annotations

from .conftest import CARD_3DS, back_to_shop, go_to_sips, pay_on_sips, sips_settings


def card_of(shop, ref):
    from example_shop import psp

    with shop.app.app_context():
        return (psp.payments_for(ref)[0].extra or {}).get("card")


def test_the_brand_and_the_3ds_outcome_are_kept(make_shop, sim):
    shop = make_shop(psp_providers=sips_settings(sim, three_ds="always"))
    buyer = shop.buyer()
    ref, page, _fields = go_to_sips(shop, buyer)
    receipt = pay_on_sips(buyer, page, card=CARD_3DS, code="1234")
    assert back_to_shop(receipt.text).status_code == 200
    facts = card_of(shop, ref)
    assert facts["brand"] == "VISA" and "last4" not in facts
    assert facts["three_ds"] == "authenticated"
