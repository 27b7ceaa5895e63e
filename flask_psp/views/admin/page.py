"""The payment page's look (logo, colours, messages) as the buyer sees it."""

from __future__ import annotations

from flask import current_app, redirect, url_for

from ...admin.forms import problems as form_problems
from ...admin.page import MESSAGE_KEYS, look_fields, page_form, page_form_data, page_row, save_page
from ...access import Permission
from ...i18n import gettext as _
from ..common import safe_color
from ...extension import current_state
from .base import actor, admin_route, db_session, page, say


def _logo_url_for(key: str) -> str:
    return url_for("psp.admin_asset", key=key) if key else url_for("psp.admin_asset", key="x")[:-1]


@admin_route("/page", Permission.VIEW_SETTINGS, endpoint="admin_page")
def page_settings(form=None, status=200):
    row = page_row(db_session())
    locales = current_state().locales
    if form is None:
        form = page_form(locales, **page_form_data(row, locales))
    return page("psp/admin/page.html", status, title=_("Payment page"), row=row, problems=form_problems(form),
                form=form, locales=locales, primary_color_safe=safe_color(row.primary_color), message_keys=MESSAGE_KEYS,
                look_fields=look_fields(), max_logo_kb=current_app.config["PSP_ADMIN_LOGO_MAX_BYTES"] // 1024)


@admin_route("/page", Permission.EDIT_PAGE, methods=("POST",), endpoint="admin_page_save")
def page_save():
    form = page_form(current_state().locales)
    if save_page(db_session(), form, actor(), current_state().locales, logo_url_for=_logo_url_for,
                 max_logo_bytes=current_app.config["PSP_ADMIN_LOGO_MAX_BYTES"]):
        db_session().rollback()
        return page_settings(form, status=400)
    say(_("The payment page is updated."))
    return redirect(url_for("psp.admin_page"), code=303)
