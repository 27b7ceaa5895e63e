"""Dashboard, payments (list, detail, capture/refund/cancel) and the inbox (with "process again")."""

from __future__ import annotations

from flask import abort, redirect, request, url_for

from ...admin.dashboard import dashboard
from ...admin.inbox import OUTCOMES, can_process_again, events_page, masked_body, process_again
from ...admin.inputs import parse_before
from ...admin.payments import PaymentFilters, operate, parse_amount, payment_timeline, payments_page
from ...admin.providers import MODES, available_provider_classes, provider_class, provider_display_name
from ...access import Permission
from ...i18n import gettext as _
from ...models import Payment, PaymentEvent
from ...money import to_decimal_string
from ...providers.base import ProviderError
from ...states import PaymentStatus
from ...extension import current_state
from .base import actor, admin_route, db_session, page, say

ACTIONS = ("capture", "refund", "cancel")


def _before() -> int | None:
    """The page's ``before`` id; a broken one is answered 400 with a message."""
    try:
        return parse_before(request.args.get("before"))
    except ValueError as exc:
        abort(400, str(exc))


@admin_route("/", Permission.VIEW_PAYMENTS, endpoint="admin_home")
def home():
    return page("psp/admin/home.html", title=_("Overview"), stats=dashboard(db_session()),
                statuses=[s.value for s in PaymentStatus])


@admin_route("/payments", Permission.VIEW_PAYMENTS, endpoint="admin_payments")
def payments():
    filters = PaymentFilters.from_args(request.args)
    rows, next_before, problems = payments_page(db_session(), filters, _before())
    return page("psp/admin/payments.html", 400 if problems else 200, title=_("Payments"), rows=rows,
                filters=filters, problems=problems,
                next_before=next_before, statuses=[s.value for s in PaymentStatus],
                providers=[n for n, _cls in available_provider_classes()], modes=MODES)


@admin_route("/payments/<int:payment_id>", Permission.VIEW_PAYMENTS, endpoint="admin_payment")
def payment_detail(payment_id: int, error: str | None = None, status: int = 200):
    payment = current_state().db.get_or_404(Payment, payment_id)
    cls = provider_class(payment.provider)
    return page("psp/admin/payment.html", status, title=_("Payment %(ref)s", ref=payment.order_ref),
                payment=payment, events=payment_timeline(db_session(), payment), error=error,
                link=current_state().links().of_payment(payment),
                provider_cls=cls, provider_name=provider_display_name(payment.provider),
                decimal=lambda amount: to_decimal_string(amount, payment.currency))


@admin_route("/payments/<int:payment_id>/<action>", Permission.OPERATE, methods=("POST",),
             endpoint="admin_payment_action")
def payment_action(payment_id: int, action: str):
    if action not in ACTIONS:
        abort(404)
    payment = current_state().db.get_or_404(Payment, payment_id)
    amount_text = (request.form.get("amount") or "").strip()
    if request.form.get("confirmed") != "1":
        try:
            amount = parse_amount(amount_text, payment.currency) if action != "cancel" else None
        except ValueError as exc:
            return payment_detail(payment_id, error=str(exc), status=400)
        if amount is None and action == "capture":
            amount = payment.capturable_amount
        if amount is None and action == "refund":
            amount = payment.refundable_amount
        return page("psp/admin/confirm.html", title=_("Please confirm"), payment=payment, action=action,
                    amount=amount, amount_text=to_decimal_string(amount, payment.currency) if amount else "")
    try:
        message = operate(current_state().service(), db_session(), payment, action, amount_text, actor())
    except ValueError as exc:
        return payment_detail(payment_id, error=str(exc), status=400)
    except ProviderError as exc:
        return payment_detail(payment_id, error=_("The provider refused: %(message)s", message=exc.message),
                              status=502)
    say(message)
    return redirect(url_for("psp.admin_payment", payment_id=payment_id), code=303)


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
