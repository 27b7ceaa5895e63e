"""Settlement reconciliation: what the PSPs' reports say that the journal does not (accountant and up)."""

from __future__ import annotations

from flask import Response, abort, current_app, request

from ...access import Permission
from ...admin import settlements
from ...admin.audit import audit
from ...i18n import gettext as _
from ...models import utcnow
from ...settlements import PROVIDERS
from .base import actor, admin_route, db_session, page


def _days() -> int:
    return int(current_app.config["PSP_SETTLEMENT_DAYS"])


@admin_route("/settlements", Permission.EXPORT, endpoint="admin_settlements")
def settlements_page():
    filters = settlements.Filters.read(request.args)
    try:
        rows, next_before, unsettled = settlements.page_data(db_session(), filters, request.args.get("before"),
                                                              _days(), utcnow())
    except ValueError as exc:
        abort(400, str(exc))
    return page("psp/admin/settlements.html", title=_("Settlements"), rows=rows, next_before=next_before,
                unsettled=unsettled, filters=filters, providers=PROVIDERS, shown=settlements.SHOWN, days=_days())


@admin_route("/settlements/export.csv", Permission.EXPORT, endpoint="admin_settlements_export")
def settlements_export():
    filters = settlements.Filters.read(request.args)
    text = settlements.to_csv(db_session(), filters, _days(), utcnow())
    audit(db_session(), actor(), "settlements.export", None, filters.as_args())
    return Response(text, mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="psp-settlements.csv"', "Cache-Control": "no-store"})
