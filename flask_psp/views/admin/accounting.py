"""Accounting settings per provider and the journal export."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Response, abort, request

from ... import accounting
from ...admin.audit import audit
from ...admin.providers import available_provider_classes, provider_class
from ...access import Permission
from ...i18n import gettext as _
from .base import actor, admin_route, db_session, page, saved


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
