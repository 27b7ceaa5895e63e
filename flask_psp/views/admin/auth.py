"""Built-in accounts: sign in, sign out; and the uploaded logo (public: buyers load it)."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, current_app, g, make_response, redirect, request, session, url_for
from sqlalchemy import select

from ...access import LoginRefused, Permission, authenticate
from ...admin_core import audit
from ...i18n import gettext as _
from ...models import Asset
from .base import SESSION_KEY, admin_route, current_principal, db_session, page, safe_next, say


@admin_route("/login", None, methods=("GET", "POST"), endpoint="admin_login")
def login():
    error = None
    status = 200
    email = ""
    if request.method == "POST":
        email = (request.form.get("email") or "").strip()
        try:
            user = authenticate(
                db_session(), email, request.form.get("password") or "",
                max_failures=int(current_app.config["PSP_ADMIN_MAX_FAILED_LOGINS"]),
                lockout=timedelta(minutes=int(current_app.config["PSP_ADMIN_LOCKOUT_MINUTES"])),
            )
        except LoginRefused as exc:
            status = 401
            if exc.reason == "locked":
                error = _("Too many failed attempts: this account is locked for a while. Try again later or ask an owner to unlock it.")
                audit(db_session(), email.lower()[:255] or "?", "login.locked", email.lower())
            else:
                error = _("Wrong email or password.")
        else:
            session[SESSION_KEY] = user.id
            g.pop("psp_principal", None)
            audit(db_session(), user.email, "login", user.email)
            return redirect(safe_next(request.args.get("next")), code=303)
    elif current_principal() is not None:
        return redirect(safe_next(request.args.get("next")))
    return page("psp/admin/login.html", status, title=_("Sign in"), error=error, email=email, principal=None)


@admin_route("/logout", Permission.VIEW_PAYMENTS, methods=("POST",), endpoint="admin_logout")
def logout():
    session.pop(SESSION_KEY, None)
    g.pop("psp_principal", None)
    say(_("You are signed out."))
    return redirect(url_for("psp.admin_login"), code=303)


@admin_route("/assets/<key>", None, endpoint="admin_asset")
def asset(key: str):
    if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
        abort(404)
    found = db_session().scalar(select(Asset).where(Asset.key == key))
    if found is None:
        abort(404)
    response = make_response(found.data)
    response.headers["Content-Type"] = found.content_type
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    return response
