"""Dashboard, payments (list, detail, capture/refund/cancel) and the inbox (with "process again")."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qsl, quote, urlencode

from flask import Response, abort, current_app, redirect, request, stream_with_context, url_for
from werkzeug.datastructures import MultiDict

from ...admin.dashboard import overview, overview_query
from ...admin.inbox import OUTCOMES, can_process_again, events_page, masked_body, process_again
from ...admin.inputs import parse_before
from ...admin.payments import (
    PaymentFilters,
    amount_field,
    asked_amount,
    operate,
    other_payments_count,
    payment_timeline,
    payments_csv,
    payments_page,
    timeline_detail,
)
from ...admin.providers import MODES, available_provider_classes, provider_class, provider_display_name
from ...access import Permission
from ...config import duration
from ...i18n import gettext as _
from ...models import Payment, PaymentEvent
from ...money import to_decimal_string
from ...providers.base import ProviderError
from ...states import PaymentStatus
from ...extension import current_state
from .base import actor, admin_locale, admin_route, db_session, page, say
from .labels import label

ACTIONS = ("capture", "refund", "cancel")


def _before() -> int | None:
    """The page's ``before`` id; a broken one is answered 400 with a message."""
    try:
        return parse_before(request.args.get("before"))
    except ValueError as exc:
        abort(400, str(exc))


@admin_route("/", Permission.VIEW_PAYMENTS, endpoint="admin_home")
def home():
    query = overview_query(request.args, date.today())
    stats = overview(db_session(), query, provider_names=provider_display_name,
                     awaiting_after=duration(current_app.config, "PSP_AWAITING_PSP_AFTER"))
    response = page("psp/admin/home.html", 400 if query.problems else 200, title=_("Overview"), stats=stats,
                    query=query, problems=query.problems, modes=MODES)
    response.headers["Content-Security-Policy"] = ADMIN_CSP
    return response


#: the panel's pages load nothing but their own files: the charts are SVG drawn on the server
ADMIN_CSP = "default-src 'self'; frame-ancestors 'none'"


def _list_args() -> dict[str, str]:
    """The list's filters (and page) a payment page was opened from, rebuilt from its ``back``
    parameter through the filters' own parsing: the way back is always the list, never elsewhere."""
    args = MultiDict(parse_qsl(request.args.get("back", ""), keep_blank_values=False))
    kept = PaymentFilters.from_args(args).as_args()
    before = args.get("before", "")
    if before.isdigit():
        kept["before"] = before
    return kept


@admin_route("/payments", Permission.VIEW_PAYMENTS, endpoint="admin_payments")
def payments():
    filters = PaymentFilters.from_args(request.args)
    rows, next_before, problems = payments_page(db_session(), filters, _before())
    back = urlencode({**filters.as_args(), **({"before": request.args["before"]} if request.args.get("before") else {})})
    return page("psp/admin/payments.html", 400 if problems else 200, title=_("Payments"), rows=rows,
                filters=filters, problems=problems, back=back, provider_name=provider_display_name,
                next_before=next_before, statuses=[s.value for s in PaymentStatus],
                providers=[(n, cls.display_name) for n, cls in available_provider_classes()], modes=MODES)


@admin_route("/payments.csv", Permission.VIEW_PAYMENTS, endpoint="admin_payments_csv")
def payments_export():
    """The filtered list as a CSV file, streamed as it is read."""
    filters = PaymentFilters.from_args(request.args)
    _rows, _next, problems = payments_page(db_session(), filters, limit=1)
    if problems:
        abort(400, " ".join(problems))
    name = f"payments-{date.today().isoformat()}.csv"
    response = Response(stream_with_context(payments_csv(db_session(), filters)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@admin_route("/payments/<int:payment_id>", Permission.VIEW_PAYMENTS, endpoint="admin_payment")
def payment_detail(payment_id: int):
    payment = current_state().db.get_or_404(Payment, payment_id)
    cls = provider_class(payment.provider)
    locale = admin_locale()
    response = page(
        "psp/admin/payment.html", title=_("Payment %(ref)s", ref=payment.order_ref),
        payment=payment, events=payment_timeline(db_session(), payment), provider_cls=cls,
        provider_name=provider_display_name(payment.provider), card=(payment.extra or {}).get("card") or {},
        field=lambda amount: amount_field(amount, payment.currency, locale), back=_list_args(),
        order_url=order_url(payment.order_ref),
        detail=lambda text: timeline_detail(text, label, locale),
        other_payments=other_payments_count(db_session(), payment),
        link=current_state().links().of_payment(payment),
    )
    response.headers["Content-Security-Policy"] = ADMIN_CSP
    return response


def order_url(order_ref: str) -> str | None:
    """``PSP_ORDER_URL`` with the order's reference: where the order is in the shop's own back office."""
    template = current_app.config.get("PSP_ORDER_URL")
    if not template:
        return None
    return template.replace("{order_ref}", quote(order_ref, safe=""))


def _back_to_payment(payment_id: int, message: str | None = None):
    """POST/redirect/GET: what a form did (or why it did nothing) is shown by the payment's page,
    which a refresh only shows again."""
    if message:
        say(message, "error")
    back = request.args.get("back") or request.form.get("back") or ""
    return redirect(url_for("psp.admin_payment", payment_id=payment_id, **({"back": back} if back else {})), code=303)


@admin_route("/payments/<int:payment_id>/<action>", Permission.OPERATE, methods=("POST",),
             endpoint="admin_payment_action")
def payment_action(payment_id: int, action: str):
    if action not in ACTIONS:
        abort(404)
    payment = current_state().db.get_or_404(Payment, payment_id)
    amount_text = (request.form.get("amount") or "").strip()
    try:
        amount = asked_amount(payment, action, amount_text, admin_locale())
    except ValueError as exc:
        return _back_to_payment(payment_id, str(exc))
    if request.form.get("confirmed") != "1":  # first the confirmation page, itself reached by GET
        values = {"amount": to_decimal_string(amount, payment.currency)} if amount is not None else {}
        back = request.form.get("back")
        return redirect(url_for("psp.admin_payment_confirm", payment_id=payment_id, action=action, **values,
                                **({"back": back} if back else {})), code=303)
    try:
        message = operate(current_state().service(), db_session(), payment, action, amount, actor())
    except ValueError as exc:
        return _back_to_payment(payment_id, str(exc))
    except ProviderError as exc:
        return _back_to_payment(payment_id, _("The provider refused: %(message)s", message=exc.message))
    say(message)
    return _back_to_payment(payment_id)


@admin_route("/payments/<int:payment_id>/<action>/confirm", Permission.OPERATE, endpoint="admin_payment_confirm")
def payment_confirm(payment_id: int, action: str):
    if action not in ACTIONS:
        abort(404)
    payment = current_state().db.get_or_404(Payment, payment_id)
    try:
        amount = asked_amount(payment, action, request.args.get("amount", ""), admin_locale())
    except ValueError as exc:
        return _back_to_payment(payment_id, str(exc))
    return page("psp/admin/confirm.html", title=_("Please confirm"), payment=payment, action=action,
                amount=amount, amount_text=to_decimal_string(amount, payment.currency) if amount is not None else "",
                provider_name=provider_display_name(payment.provider), back=request.args.get("back", ""))


@admin_route("/inbox", Permission.VIEW_PAYMENTS, endpoint="admin_inbox")
def inbox():
    outcome = request.args.get("outcome", "")
    provider = request.args.get("provider", "")
    rows, next_before = events_page(db_session(), outcome, provider, _before())
    return page("psp/admin/inbox.html", title=_("Inbox"), rows=rows, next_before=next_before, outcome=outcome,
                provider=provider, outcomes=OUTCOMES,
                providers=[n for n, _cls in available_provider_classes()])


@admin_route("/inbox/<int:event_id>", Permission.VIEW_PAYMENTS, endpoint="admin_event")
def event_detail(event_id: int):
    row = current_state().db.get_or_404(PaymentEvent, event_id)
    return page("psp/admin/event.html", title=_("Inbox entry #%(id)s", id=row.id), row=row,
                body=masked_body(row), can_process=can_process_again(row))


@admin_route("/inbox/<int:event_id>/process", Permission.OPERATE, methods=("POST",), endpoint="admin_event_process")
def event_process(event_id: int):
    row = current_state().db.get_or_404(PaymentEvent, event_id)
    ok, message = process_again(current_state().service(), db_session(), row, actor())
    say(message, "ok" if ok else "error")
    return redirect(url_for("psp.admin_event", event_id=event_id), code=303)
