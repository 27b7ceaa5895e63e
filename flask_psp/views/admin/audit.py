"""The audit log: who changed what, when."""

from __future__ import annotations

from flask import abort, request

from ...admin.audit import audit_page, describe, order_refs
from ...admin.inputs import parse_before
from ...access import Permission
from ...i18n import gettext as _
from ...money import format_amount
from .base import admin_locale, admin_route, db_session, page


@admin_route("/audit", Permission.VIEW_AUDIT, endpoint="admin_audit")
def audit_log():
    try:
        before = parse_before(request.args.get("before"))
    except ValueError as exc:
        abort(400, str(exc))
    rows, next_before = audit_page(db_session(), before,
                                        actor=request.args.get("actor") or None,
                                        action=request.args.get("action") or None)
    locale = admin_locale()
    return page("psp/admin/audit.html", title=_("Audit log"), rows=rows, next_before=next_before,
                payments=order_refs(db_session(), rows),
                describe=lambda entry: describe(entry, lambda a, c: format_amount(a, c, locale)))
