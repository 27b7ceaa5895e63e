"""The "Payment links" page: list and create, a link's detail and QR code, send again, cancel."""

from __future__ import annotations

import re

from flask import Response, abort, redirect, request, url_for

from ...access import Permission
from ...admin.inputs import parse_before
from ...admin.links import LinkFilters, create_link, links_page, payments_of_link
from ...extension import current_state
from ...i18n import gettext as _
from ...links import STATUSES, LinkError, qr_svg, status_word
from ...models import PaymentLink
from .base import actor, admin_route, db_session, page, say


def _links():
    return current_state().links()


@admin_route("/links", Permission.VIEW_PAYMENTS, endpoint="admin_links")
def links(problems=None, status=200, form=None):
    filters = LinkFilters.from_args(request.args)
    try:
        before = parse_before(request.args.get("before"))
    except ValueError as exc:
        abort(400, str(exc))
    rows, next_before, filter_problems = links_page(db_session(), filters, before)
    problems = (problems or []) + filter_problems
    return page("psp/admin/links.html", 400 if problems and status == 200 else status, title=_("Payment links"),
                rows=rows, filters=filters, next_before=next_before, statuses=STATUSES, status_word=status_word,
                problems=problems, form=form or {}, locales=current_state().locales)


@admin_route("/links", Permission.MANAGE_LINKS, methods=("POST",), endpoint="admin_link_create")
def link_create():
    try:
        link = create_link(_links(), request.form, actor())
    except LinkError as exc:
        db_session().rollback()
        return links(problems=[str(exc)], status=400, form=request.form)
    say(_("Payment link sent to %(address)s.", address=link.email or current_state().orders.get(link.order_ref).email)
        if request.form.get("send") else _("Payment link created."))
    return redirect(url_for("psp.admin_link", link_id=link.id), code=303)


@admin_route("/links/<int:link_id>", Permission.VIEW_PAYMENTS, endpoint="admin_link")
def link_detail(link_id: int):
    link = current_state().db.get_or_404(PaymentLink, link_id)
    order = current_state().orders.get(link.order_ref)
    return page("psp/admin/link.html", title=_("Payment link for order %(ref)s", ref=link.order_ref), link=link,
                order=order, url=link.url, qr=qr_svg(link.url), status_word=status_word,
                payments=payments_of_link(db_session(), link))


@admin_route("/links/<int:link_id>/qr.svg", Permission.VIEW_PAYMENTS, endpoint="admin_link_qr")
def link_qr(link_id: int):
    link = current_state().db.get_or_404(PaymentLink, link_id)
    name = re.sub(r"[^A-Za-z0-9_-]", "_", link.order_ref)[:40]
    return Response(qr_svg(link.url, scale=8, standalone=True), mimetype="image/svg+xml", headers={
        "Content-Disposition": f'attachment; filename="payment-link-{name}.svg"', "Cache-Control": "no-store"})


@admin_route("/links/<int:link_id>/<action>", Permission.MANAGE_LINKS, methods=("POST",), endpoint="admin_link_action")
def link_action(link_id: int, action: str):
    if action not in ("send", "cancel"):
        abort(404)
    link = current_state().db.get_or_404(PaymentLink, link_id)
    try:
        if action == "send":
            link = _links().send(link, actor=actor())
            say(_("Payment link sent to %(address)s.",
                  address=link.email or current_state().orders.get(link.order_ref).email))
        else:
            _links().cancel(link, actor=actor())
            say(_("Payment link cancelled."))
    except LinkError as exc:
        db_session().rollback()
        say(str(exc), "error")
    return redirect(url_for("psp.admin_link", link_id=link_id), code=303)
