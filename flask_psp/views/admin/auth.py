"""Built-in accounts: sign in, sign out, change one's password; and the uploaded logo (public: buyers load it)."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, current_app, make_response, redirect, request, session, url_for
from sqlalchemy import select

from ...access import LoginRefused, Permission, Throttle, authenticate, sign_out_everywhere
from ...admin.audit import audit
from ...i18n import gettext as _
from ...models import AdminUser, Asset
from ...users import MIN_PASSWORD_LENGTH, set_password
from .base import (
    SESSION_GENERATION,
    admin_route,
    current_principal,
    db_session,
    end_admin_session,
    page,
    safe_next,
    say,
    start_admin_session,
)


def login_throttle() -> Throttle:
    config = current_app.config
    return Throttle(
        max_failures=int(config["PSP_ADMIN_MAX_FAILED_LOGINS"]),
        first_delay=timedelta(minutes=float(config["PSP_ADMIN_LOCKOUT_MINUTES"])),
        max_delay=timedelta(minutes=float(config["PSP_ADMIN_LOCKOUT_MAX_MINUTES"])),
    )


@admin_route("/login", None, methods=("GET", "POST"), endpoint="admin_login")
def login():
    error = None
    status = 200
    email = ""
    if request.method == "POST":
        email = (request.form.get("email") or "").strip()
        try:
            user = authenticate(db_session(), email, request.form.get("password") or "",
                                address=request.remote_addr, throttle=login_throttle())
        except LoginRefused:
            # one answer for an unknown email, a wrong password and a delay running
            status = 401
            error = _("Wrong email or password, or too many failed attempts: try again in a few minutes.")
        else:
            start_admin_session(user)
            audit(db_session(), user.email, "login", user.email)
            return redirect(safe_next(request.args.get("next")), code=303)
    elif current_principal() is not None:
        return redirect(safe_next(request.args.get("next")))
    return page("psp/admin/login.html", status, title=_("Sign in"), error=error, email=email, principal=None)


@admin_route("/logout", Permission.VIEW_PAYMENTS, methods=("POST",), endpoint="admin_logout")
def logout():
    principal = current_principal()
    if principal is not None and principal.source == "builtin":
        user = db_session().get(AdminUser, principal.user_id)
        sign_out_everywhere(user)  # a copy of this session's cookie is refused from now on
        db_session().commit()
    end_admin_session()
    say(_("You are signed out."))
    return redirect(url_for("psp.admin_login"), code=303)


@admin_route("/account", Permission.VIEW_PAYMENTS, endpoint="admin_account")
def account(problems=None, status=200):
    return page("psp/admin/account.html", status, title=_("Your account"), problems=problems or [],
                min_length=MIN_PASSWORD_LENGTH)


@admin_route("/account/password", Permission.VIEW_PAYMENTS, methods=("POST",), endpoint="admin_password")
def change_password():
    principal = current_principal()
    if principal.source != "builtin":
        abort(404)  # the shop's own login manages these accounts
    new = request.form.get("new_password") or ""
    if new != (request.form.get("new_password_again") or ""):
        return account([_("The two new passwords differ.")], 400)
    if len(new) < MIN_PASSWORD_LENGTH:
        return account([_("Passwords have at least %(n)s characters.", n=MIN_PASSWORD_LENGTH)], 400)
    try:  # the current password is checked like a sign-in: the same delays after failures
        user = authenticate(db_session(), principal.name, request.form.get("password") or "",
                            address=request.remote_addr, throttle=login_throttle(), signing_in=False)
    except LoginRefused:
        return account([_("Wrong password, or too many failed attempts: try again in a few minutes.")], 400)
    session[SESSION_GENERATION] = set_password(db_session(), user, new)  # other sessions end, this one stays
    audit(db_session(), user.email, "user.password", user.email)
    say(_("Password changed. You were signed out everywhere else."))
    return redirect(url_for("psp.admin_account"), code=303)


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
