"""Helpers for the payment link tests: links made through the public API, a buyer who opens one and
chooses a provider, and reading a link back."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from tests.conftest import CSRF


def make_link(shop, ref, **options):
    """``psp.create_payment_link`` in the shop's app; returns (token, url)."""
    from example_shop import psp

    with shop.app.app_context():
        link = psp.create_payment_link(ref, **options)
        return link.token, link.url


def link_row(shop, token) -> dict:
    from flask_psp.models import PaymentLink

    with shop.app.app_context():
        link = shop.app.extensions["psp"].db.session.scalar(sa.select(PaymentLink).where(PaymentLink.token == token))
        values = {c.key: getattr(link, c.key) for c in PaymentLink.__table__.columns}
        values["status"] = link.status
        return values


def move_expiry(shop, token, delta: timedelta) -> None:
    """Move a link's expiry by ``delta`` (into the past: an expired link)."""
    from flask_psp.models import PaymentLink

    with shop.app.app_context():
        session = shop.app.extensions["psp"].db.session
        link = session.scalar(sa.select(PaymentLink).where(PaymentLink.token == token))
        link.expires_at = link.expires_at + delta
        session.commit()


def set_order_amount(shop, ref, amount: int) -> None:
    from example_shop import Order, db

    with shop.app.app_context():
        db.session.get(Order, ref).amount = amount
        db.session.commit()


def open_link(buyer, url):
    page = buyer.http.get(url, timeout=10)
    return page


def choose_on_link(buyer, url, provider="payplug"):
    """The link's page, then the buyer's choice: the answer (303 to the PSP, or Sips' form page)."""
    page = buyer.http.get(url, timeout=10)
    assert page.status_code == 200, page.text
    return buyer.http.post(url, data={"provider": provider, "csrf_token": CSRF.search(page.text).group(1)},
                           allow_redirects=False, timeout=10)


def new_order(buyer) -> str:
    """An order placed in the shop (and left unpaid: the buyer goes away from the checkout)."""
    return buyer.place_order(email="alice@example.com")
