"""Providers: credentials (test and live), mode, capture, 3-D Secure, limits, connection test."""

from __future__ import annotations

from flask import abort, current_app, redirect, request, url_for

from ...admin.audit import audit
from ...admin.providers import (
    CAPTURE_CHOICES,
    MAX_DELAY_DAYS,
    MODES,
    THREE_DS_CHOICES,
    panel_form_data,
    provider_form,
    provider_panel,
    provider_panels,
    save_provider,
    test_connection,
)
from ...access import Permission
from ...i18n import gettext as _
from ..common import public_base
from ...extension import current_state
from .base import actor, admin_route, current_principal, db_session, page, say


def _panel_or_404(name: str):
    panel = provider_panel(db_session(), current_state().settings, name)
    if panel is None:
        abort(404)
    return panel


@admin_route("/providers", Permission.VIEW_SETTINGS, endpoint="admin_providers")
def providers():
    panels = provider_panels(db_session(), current_state().settings)
    return page("psp/admin/providers.html", title=_("Payment providers"), panels=panels,
                notify_base=public_base() + "/notify/")


@admin_route("/providers/<name>", Permission.VIEW_SETTINGS, endpoint="admin_provider")
def provider(name: str, problems=None, form=None, status=200):
    panel = _panel_or_404(name)
    if form is None:
        form = provider_form(name, **panel_form_data(panel))
    return page("psp/admin/provider.html", status, title=panel.display_name, panel=panel,
                notify_url=f"{public_base()}/notify/{name}", problems=problems or [], form=form,
                modes=MODES, capture_choices=CAPTURE_CHOICES, three_ds_choices=THREE_DS_CHOICES,
                max_delay=MAX_DELAY_DAYS, custom_endpoints=current_app.config["PSP_ALLOW_CUSTOM_ENDPOINTS"])


@admin_route("/providers/<name>", Permission.EDIT_PROVIDERS, methods=("POST",), endpoint="admin_provider_save")
def provider_save(name: str):
    _panel_or_404(name)
    s = current_state()
    notices: list[str] = []
    form = provider_form(name)
    problems = save_provider(db_session(), s.settings, s.box, form, actor(),
                             may_change_endpoints=current_principal().can(Permission.EDIT_ENDPOINTS),
                             allow_custom_endpoints=bool(current_app.config["PSP_ALLOW_CUSTOM_ENDPOINTS"]),
                             notices=notices)
    if problems:
        return provider(name, problems=problems, form=form, status=400)
    say(_("Settings saved."))
    for notice in notices:
        say(notice, "error")
    return redirect(url_for("psp.admin_provider", name=name), code=303)


@admin_route("/providers/<name>/test", Permission.EDIT_PROVIDERS, methods=("POST",), endpoint="admin_provider_test")
def provider_test(name: str):
    _panel_or_404(name)
    mode = request.form.get("mode", "test")
    ok, message = test_connection(db_session(), current_state().settings, current_state().http, name, mode)
    audit(db_session(), actor(), "provider.test_connection", name, {"mode": mode, "ok": ok})
    say(message, "ok" if ok else "error")
    return redirect(url_for("psp.admin_provider", name=name), code=303)
