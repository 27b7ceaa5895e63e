"""What a merchant does and sees around captures, refunds and cancellations in the admin panel,
shared by the providers' tests: sign in with a role, click an action and confirm it, read the
flashes, the requests awaiting the provider and the amounts the forms offer."""

from __future__ import annotations

import re

import sqlalchemy as sa

from tests.admin.conftest import PASSWORD, Admin


def merchant(shop, role="manager"):
    from example_shop import psp

    email = f"{role}@example.com"
    with shop.app.app_context():
        from flask_psp.models import AdminUser

        if not shop.app.extensions["psp"].db.session.scalar(sa.select(AdminUser).where(AdminUser.email == email)):
            psp.create_user(email, PASSWORD, role=role)
    admin = Admin(shop, email)
    assert admin.login().status_code == 303
    return admin


def act(admin, payment_id, action, amount=""):
    """Click the action and confirm it, as a merchant does; returns the page landed on."""
    first = admin.post(f"/payments/{payment_id}/{action}", {"amount": amount})
    assert first.status_code == 303, first.text  # POST/redirect/GET: the confirmation page is a GET
    first = admin.get(first.headers["Location"].removeprefix("/psp/admin"))
    if 'data-confirm="' not in first.text:  # refused on the form: the payment's page says why
        return first
    shown = re.search(r'name="amount" value="([^"]*)"', first.text)
    done = admin.post(f"/payments/{payment_id}/{action}",
                      {"amount": shown.group(1) if shown else "", "confirmed": "1"})
    if done.status_code != 303:
        return done
    return admin.get(done.headers["Location"].removeprefix("/psp/admin"))


def flashes(page):
    return [re.sub(r"\s+", " ", m).strip() for m in re.findall(r'<p class="psp-flash[^"]*"[^>]*>(.*?)</p>', page.text, re.S)]


def awaiting(page):
    return [re.sub(r"\s+", " ", re.sub(r"<small>.*?</small>", "", m)).strip()
            for m in re.findall(r"<li data-operation=[^>]*>(.*?)</li>", page.text, re.S)]


def form_amount(page, action):
    match = re.search(rf'action="[^"]*/{action}"[^>]*>.*?name="amount" value="([^"]*)"', page.text, re.S)
    return match.group(1) if match else None


def payment_page(admin, payment):
    return admin.get(f"/payments/{payment['id']}")


