"""Accounting settings per provider and the journal export."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Response, abort, current_app, request, stream_with_context

from ... import accounting
from ...admin.audit import audit
from ...admin.providers import available_provider_classes, provider_class
from ...access import Permission
from ...config import export_options
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


def _period():
    """The period asked (the last 30 days when none is), or the page again with the problem (400)."""
    if "start" in request.args or "end" in request.args:
        try:
            return accounting.export_period(request.args.get("start"), request.args.get("end")), None
        except ValueError as exc:
            return None, accounting_page(problems=[str(exc)], status=400)
    end = date.today()
    return (end - timedelta(days=30), end), None


def _download(body, filename: str, mimetype: str) -> Response:
    return Response(stream_with_context(body), mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@admin_route("/accounting/export.csv", Permission.EXPORT, endpoint="admin_accounting_export")
def accounting_export():
    period, problem = _period()
    if problem is not None:
        return problem
    mode = "test" if request.args.get("mode") == "test" else "live"
    start, end = period
    options = export_options(current_app.config, mode)
    audit(db_session(), actor(), "accounting.export", f"{start}..{end}", {"format": "csv", "mode": mode})
    lines = accounting.csv_lines(db_session(), start, end, options)
    return _download((line.encode("utf-8") for line in lines), accounting.csv_filename(start, end, mode),
                     "text/csv")


@admin_route("/accounting/export.fec", Permission.EXPORT, endpoint="admin_accounting_export_fec")
def accounting_export_fec():
    period, problem = _period()
    if problem is not None:
        return problem
    start, end = period
    options = export_options(current_app.config, "live")
    if not options.siren:
        return accounting_page(problems=[_("A FEC is named after the company's SIREN: set PSP_SIREN.")], status=400)
    missing = accounting.currencies_without_rate(db_session(), start, end, options)
    if missing:
        return accounting_page(problems=[_("No exchange rate to %(accounting)s for %(currencies)s: set "
                                           "PSP_EXCHANGE_RATES.", accounting=options.currency,
                                           currencies=", ".join(missing))], status=400)
    audit(db_session(), actor(), "accounting.export", f"{start}..{end}", {"format": "fec", "mode": "live"})
    return _download(accounting.fec_chunks(db_session(), start, end, options),
                     accounting.fec_filename(options.siren, end), "text/plain; charset=iso-8859-15")
