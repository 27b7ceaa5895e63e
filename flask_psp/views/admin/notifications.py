"""Notification e-mails: who is told of what, and the outbox of mails written."""

from __future__ import annotations

from flask import abort, redirect, request, url_for

from ... import mailer
from ...admin.audit import audit
from ...admin.notifications import NOTIFY_EVENTS, notification_settings, save_notifications
from ...admin.page import page_row
from ...access import Permission
from ...i18n import gettext as _
from ...extension import current_state
from .base import actor, admin_route, db_session, page, saved, say


@admin_route("/notifications", Permission.VIEW_SETTINGS, endpoint="admin_notifications")
def notifications(problems=None, status=200):
    row = page_row(db_session())
    settings = notification_settings(row)
    mail = current_state().mailer.config
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
    return page("psp/admin/mail.html", title=_("Mail outbox"), mail_server=current_state().mailer.config.server, **outbox)


@admin_route("/mail/<int:mail_id>/retry", Permission.EDIT_NOTIFICATIONS, methods=("POST",), endpoint="admin_mail_retry")
def mail_retry(mail_id: int):
    row = mailer.send_again(db_session(), mail_id)
    if row is None:
        db_session().rollback()
        abort(404)
    audit(db_session(), actor(), "mail.retry", f"mail {mail_id}", {"kind": row.kind}, commit=False)
    db_session().commit()
    current_state().mailer.written(db_session())
    say(_("The mail will be sent again."))
    return redirect(url_for("psp.admin_mail"), code=303)
