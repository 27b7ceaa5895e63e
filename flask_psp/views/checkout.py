"""Buyer pages: choose a provider, go to the PSP, come back."""

from __future__ import annotations

from urllib.parse import quote

from flask import abort, current_app, g, jsonify, redirect, request, url_for
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from ..i18n import gettext as _
from ..payments import AlreadyPaid, NotAvailable, Urls
from ..providers import get_provider_class
from ..providers.base import InboundRequest, ProviderError
from ..states import SETTLED, UNSUCCESSFUL, PaymentStatus
from . import blueprint
from .common import buyer_locale, in_locale, page_settings, public_base, render
from ..extension import current_state

S = PaymentStatus


#: the longest order reference a payment can carry (``Payment.order_ref``)
_MAX_REF = 128


def _could_be_stored(text: str) -> bool:
    """Whether ``text`` could be an order reference or a token at all: a reference no payment can
    hold (too long, control characters — PostgreSQL refuses NUL) is a 404 without a query."""
    return 0 < len(text) <= _MAX_REF and text.isprintable()


def _found_or_404(key: str, look_up):
    """``look_up(key)``, or a 404 when it finds nothing or ``key`` could not be stored at all."""
    found = look_up(key) if _could_be_stored(key) else None
    if found is None:
        abort(404)
    return found


def _order_or_404(order_ref: str):
    return _found_or_404(order_ref, current_app.extensions["psp"].orders.get)


@blueprint.route("/checkout/<order_ref>", methods=["GET", "POST"])
def checkout(order_ref: str):
    order = _order_or_404(order_ref)
    locale = buyer_locale(order.locale)
    if request.method == "POST":
        try:
            if not g.get("csrf_valid"):  # else the host's CSRFProtect checked it already, as FlaskForm trusts
                validate_csrf(request.form.get("csrf_token"))
        except ValidationError:
            with in_locale(locale):
                error = _("Your session has expired. Please choose again.")
            return _checkout_page(order, locale, error, 400)
        # PaymentService.start checks, once, that the order is unpaid and the provider available
        return _start(order, locale, request.form.get("provider", ""))
    return _checkout_page(order, locale)


def _checkout_page(order, locale, error=None, status=200):
    svc = current_state().service()
    attempts = svc.payments_of(order.reference)
    paid = svc.settled_among(attempts)
    if paid is not None:
        return render("psp/already_paid.html", locale, order=order, payment=paid)
    choices = [(c.name, get_provider_class(c.name).display_name, c.mode) for c in svc.available_providers(order)]
    retry = attempts[-1] if attempts and attempts[-1].status_enum in UNSUCCESSFUL else None
    return render(
        "psp/checkout.html",
        locale,
        status,
        order=order,
        choices=choices,
        error=error,
        retry=retry,
        csrf_token=generate_csrf(),
    )


def _start(order, locale, provider_name, *, again=None, payment_extra=None):
    """Start ``provider_name``'s hosted checkout for ``order``: a 303 to its page (Sips: the
    auto-submitting form). ``again(error, status)`` shows the page the buyer chose on with an error
    (default: the checkout page); ``payment_extra`` seeds the payment's ``extra``."""
    again = again or (lambda error, status: _checkout_page(order, locale, error, status))
    base = public_base()

    def urls(token: str) -> Urls:
        return Urls(
            return_url=f"{base}/return/{token}",
            cancel_url=f"{base}/cancel/{token}",
            notify_url=f"{base}/notify/{provider_name}",
        )

    try:
        payment, started = current_state().service().start(order, provider_name, locale, urls,
                                                           payment_extra=payment_extra)
    except AlreadyPaid as exc:
        return render("psp/already_paid.html", locale, order=order, payment=exc.payment)
    except NotAvailable:
        with in_locale(locale):
            error = _("This payment method is not available for this order.")
        return again(error, 400)
    except ProviderError:
        with in_locale(locale):
            error = _("The payment service could not be reached. Please try again or choose another method.")
        return again(error, 502)
    if started.form_action:
        return render(
            "psp/redirect_form.html", locale, action=started.form_action, fields=started.form_fields or {}
        )
    return redirect(started.redirect_url, code=303)


def _payment_or_404(token: str):
    return _found_or_404(token, current_state().service().by_token)


@blueprint.route("/return/<token>", methods=["GET", "POST"])
def return_(token: str):
    payment = _payment_or_404(token)
    if payment.status_enum not in SETTLED:
        inbound = InboundRequest(
            body=request.get_data(),
            headers=dict(request.headers),
            form=request.form.to_dict(),
            args=request.args.to_dict(),
            content_type=request.content_type,
        )
        payment = current_state().service().refresh(payment, "return", inbound)
    return _result_page(payment)


@blueprint.get("/cancel/<token>")
def cancel(token: str):
    payment = _payment_or_404(token)
    if payment.status_enum in (S.CREATED, S.PENDING):
        payment = current_state().service().refresh(payment, "abandon")
    return _result_page(payment)


def shop_url(order_ref: str) -> str | None:
    """``PSP_SHOP_URL``, where a buyer goes back to the shop from a result page; "{order_ref}" in
    it is replaced by the order's reference (the shop's page of the order)."""
    template = current_app.config.get("PSP_SHOP_URL")
    if not template:
        return None
    return template.replace("{order_ref}", quote(order_ref, safe=""))


def _buyer_is_mailed(payment) -> bool:
    """Will the buyer get an e-mail when the payment is settled? Only when mail is set up, the merchant
    sends buyer receipts and the buyer gave an address."""
    from ..admin.notifications import notification_settings

    return bool(payment.email) and current_state().mailer.enabled and \
        notification_settings(page_settings()).get("buyer_receipt", False)


def _result_page(payment):
    locale = payment.locale or buyer_locale()
    return render(
        "psp/return.html",
        locale,
        payment=payment,
        shop_url=shop_url(payment.order_ref),
        buyer_mailed=_buyer_is_mailed(payment),
        status_url=url_for("psp.status", token=payment.token),
        checkout_url=url_for("psp.checkout", order_ref=payment.order_ref),
        poll_seconds=current_app.config["PSP_POLL_INTERVAL"],
    )


@blueprint.get("/payments/<token>/status.json")
def status(token: str):
    payment = _payment_or_404(token)
    response = jsonify({"status": payment.status, "order_ref": payment.order_ref})
    response.headers["Cache-Control"] = "no-store"
    return response
