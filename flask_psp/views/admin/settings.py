"""Payment page look, notification e-mails, accounting, audit log, users."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Response, abort, current_app, redirect, request, url_for

from ... import accounting, mailer
from ...admin.audit import audit, audit_page
from ...admin.inputs import parse_before
from ...admin.notifications import NOTIFY_EVENTS, notification_settings, save_notifications
from ...admin.forms import problems as form_problems
from ...admin.page import MESSAGE_KEYS, look_fields, page_form, page_form_data, page_row, save_page
from ...admin.providers import available_provider_classes, provider_class
from ...admin.users import list_users, update_user
from ...access import ROLES, Permission
from ...i18n import gettext as _
from ...models import AdminUser
from ...users import MIN_PASSWORD_LENGTH, create_user
from ..common import safe_color, state
from .base import actor, admin_route, db_session, page, saved, say


# ------------------------------------------------------------------ payment page
def _logo_url_for(key: str) -> str:
    return url_for("psp.admin_asset", key=key) if key else url_for("psp.admin_asset", key="x")[:-1]


@admin_route("/page", Permission.VIEW_SETTINGS, endpoint="admin_page")
def page_settings(form=None, status=200):
    row = page_row(db_session())
    locales = state().locales
    if form is None:
        form = page_form(locales, **page_form_data(row, locales))
    return page("psp/admin/page.html", status, title=_("Payment page"), row=row, problems=form_problems(form),
                form=form, locales=locales, primary_color_safe=safe_color(row.primary_color), message_keys=MESSAGE_KEYS,
                look_fields=look_fields(), max_logo_kb=current_app.config["PSP_ADMIN_LOGO_MAX_BYTES"] // 1024)


@admin_route("/page", Permission.EDIT_PAGE, methods=("POST",), endpoint="admin_page_save")
def page_save():
    form = page_form(state().locales)
    if save_page(db_session(), form, actor(), state().locales, logo_url_for=_logo_url_for,
                 max_logo_bytes=current_app.config["PSP_ADMIN_LOGO_MAX_BYTES"]):
        db_session().rollback()
        return page_settings(form, status=400)
    say(_("The payment page is updated."))
    return redirect(url_for("psp.admin_page"), code=303)


# ------------------------------------------------------------------ notifications
@admin_route("/notifications", Permission.VIEW_SETTINGS, endpoint="admin_notifications")
def notifications(problems=None, status=200):
    row = page_row(db_session())
    settings = notification_settings(row)
    mail = state().mailer.config
    return page("psp/admin/notifications.html", status, title=_("Notifications"), notify=settings,
                events=NOTIFY_EVENTS, problems=problems or [], mail_server=mail.server,
                form=request.form if problems else None)


@admin_route("/notifications", Permission.EDIT_NOTIFICATIONS, methods=("POST",), endpoint="admin_notifications_save")
def notifications_save():
    problems = save_notifications(db_session(), request.form, request.form.getlist("events"), actor())
    return saved(problems, notifications, _("Notification settings saved."), "psp.admin_notifications")


@admin_route("/mail", Permission.VIEW_SETTINGS, endpoint="admin_mail")
def mail_outbox():
    outbox = mailer.outbox_rows(db_session())
    return page("psp/admin/mail.html", title=_("Mail outbox"), mail_server=state().mailer.config.server, **outbox)


@admin_route("/mail/<int:mail_id>/retry", Permission.EDIT_NOTIFICATIONS, methods=("POST",), endpoint="admin_mail_retry")
def mail_retry(mail_id: int):
    row = mailer.send_again(db_session(), mail_id)
    if row is None:
        db_session().rollback()
        abort(404)
    audit(db_session(), actor(), "mail.retry", f"mail {mail_id}", {"kind": row.kind}, commit=False)
    db_session().commit()
    state().mailer.written(db_session())
    say(_("The mail will be sent again."))
    return redirect(url_for("psp.admin_mail"), code=303)


# ------------------------------------------------------------------ accounting
@admin_route("/accounting", Permission.VIEW_SETTINGS, endpoint="admin_accounting")
def accounting_page(problems=None, status=200):
    names = [n for n, _cls in available_provider_classes()]
    rows = [(n, accounting.settings_for(db_session(), n), accounting.defaults(n)) for n in names]
    today = date.today()
    return page("psp/admin/accounting.html", status, title=_("Accounting"), rows=rows, fields=accounting.FIELDS,
                problems=problems or [], start=(today.replace(day=1)).isoformat(), end=today.isoformat())


@admin_route("/accounting/<name>", Permission.EDIT_ACCOUNTING, methods=("POST",), endpoint="admin_accounting_save")
def accounting_save(name: str):
    if provider_class(name) is None:
        abort(404)
    problems = accounting.save(db_session(), name, request.form, actor())
    return saved(problems, accounting_page, _("Accounting settings saved."), "psp.admin_accounting")


@admin_route("/accounting/export.csv", Permission.EXPORT, endpoint="admin_accounting_export")
def accounting_export():
    if "start" in request.args or "end" in request.args:
        try:
            start, end = accounting.export_period(request.args.get("start"), request.args.get("end"))
        except ValueError as exc:
            return accounting_page(problems=[str(exc)], status=400)
    else:
        end = date.today()
        start = end - timedelta(days=30)
    names = [n for n, _cls in available_provider_classes()]
    lines = accounting.journal_lines(db_session(), names, start, end)
    audit(db_session(), actor(), "accounting.export", f"{start}..{end}", {"lines": len(lines)})
    return Response(
        accounting.to_csv(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="psp-journal-{start}-{end}.csv"',
                 "Cache-Control": "no-store"},
    )


# ------------------------------------------------------------------ audit
@admin_route("/audit", Permission.VIEW_AUDIT, endpoint="admin_audit")
def audit_log():
    try:
        before = parse_before(request.args.get("before"))
    except ValueError as exc:
        abort(400, str(exc))
    rows, next_before = audit_page(db_session(), before,
                                        actor=request.args.get("actor") or None,
                                        action=request.args.get("action") or None)
    return page("psp/admin/audit.html", title=_("Audit log"), rows=rows, next_before=next_before)


# ------------------------------------------------------------------ users
@admin_route("/users", Permission.MANAGE_USERS, endpoint="admin_users")
def users(problems=None, status=200):
    return page("psp/admin/users.html", status, title=_("Users"), users=list_users(db_session()), roles=ROLES,
                problems=problems or [], min_length=MIN_PASSWORD_LENGTH)


@admin_route("/users", Permission.MANAGE_USERS, methods=("POST",), endpoint="admin_user_create")
def user_create():
    email = (request.form.get("email") or "").strip()
    role = request.form.get("role", "viewer")
    try:
        create_user(db_session(), email, request.form.get("password") or "", role)
    except ValueError as exc:
        db_session().rollback()
        return users(problems=[str(exc)], status=400)
    audit(db_session(), actor(), "user.create", email.lower(), {"role": role})
    say(_("Account created."))
    return redirect(url_for("psp.admin_users"), code=303)


@admin_route("/users/<int:user_id>", Permission.MANAGE_USERS, methods=("POST",), endpoint="admin_user_update")
def user_update(user_id: int):
    user = db_session().get(AdminUser, user_id)
    if user is None:
        abort(404)
    problems = update_user(db_session(), user, request.form, actor())
    return saved(problems, users, _("Account updated."), "psp.admin_users")
