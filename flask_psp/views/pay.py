"""A payment link's page, ``GET/POST {prefix}/pay/<link-token>``: the order as the shop has it now,
the merchant's note, the enabled providers, then the usual hosted checkout."""

from __future__ import annotations

from flask import current_app, request
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from ..extension import current_state
from ..i18n import gettext as _
from ..providers import get_provider_class
from . import blueprint
from .checkout import _found_or_404, _start
from .common import buyer_locale, in_locale, render


@blueprint.route("/pay/<token>", methods=["GET", "POST"])
def pay_link(token: str):
    state = current_state()
    service = state.service()
    links = state.links(service)
    link = _found_or_404(token, links.by_token)
    order = state.orders.get(link.order_ref)
    locale = buyer_locale(link.locale or (order.locale if order is not None else None))
    paid = service.settled_payment(link.order_ref)
    if paid is not None and order is not None:
        return render("psp/already_paid.html", locale, order=order, payment=paid)
    status = link.status
    if status in ("expired", "cancelled", "paid") or order is None:
        # a link paid whose payment was refunded since, or an order the shop no longer has: gone too
        return render("psp/link_gone.html", locale, 410, link=link, link_status=status,
                      contact=current_app.config.get("PSP_LINK_CONTACT"))
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError:
            with in_locale(locale):
                error = _("Your session has expired. Please choose again.")
            return _link_page(service, link, order, locale, error, 400)
        return _start(order, locale, request.form.get("provider", ""), payment_extra={"payment_link": link.token},
                      again=lambda error, code: _link_page(service, link, order, locale, error, code))
    links.opened(link)
    return _link_page(service, link, order, locale)


def _link_page(service, link, order, locale, error=None, status=200):
    choices = [(c.name, get_provider_class(c.name).display_name, c.mode) for c in service.available_providers(order)]
    return render("psp/pay_link.html", locale, status, link=link, order=order, choices=choices, error=error,
                  csrf_token=generate_csrf())
