"""Plumbing shared by the admin views: who is signed in, role checks, CSRF, rendering."""

from __future__ import annotations

import functools
import time
from urllib.parse import urlencode, urlsplit

from flask import abort, current_app, flash, g, make_response, redirect, request, session, url_for
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from ...access import Permission, Principal, principal_for_user, principal_from_loader
from ...i18n import gettext as _
from ...models import AdminUser, PageSettings
from .. import blueprint
from .labels import label
from ..common import buyer_locale, in_locale, render
from ...extension import current_state

#: what a built-in account's session holds: the user's id, the session generation it was opened
#: with (sign-out and password changes bump the user's, which ends older sessions on the server),
#: and when it was last used (Unix seconds; idle longer than PSP_ADMIN_IDLE_MINUTES: signed out)
SESSION_KEY = "psp_admin_user"
SESSION_GENERATION = "psp_admin_generation"
SESSION_SEEN = "psp_admin_seen"
#: endpoint → permission it needs (None: public). Filled by :func:`admin_route`; tests walk it.
ROUTE_PERMISSIONS: dict[str, Permission | None] = {}


def db_session():
    return current_state().db.session


def current_principal() -> Principal | None:
    """The host's user (``PSP_ADMIN_USER_LOADER``) first, then a built-in account's session.
    Looked up once per request."""
    if "psp_principal" not in g:
        g.psp_principal = _lookup_principal()
    return g.psp_principal


def start_admin_session(user: AdminUser) -> None:
    """Sign ``user`` in on this browser (after their password was checked)."""
    session[SESSION_KEY] = user.id
    session[SESSION_GENERATION] = user.session_generation
    session[SESSION_SEEN] = int(time.time())
    g.pop("psp_principal", None)


def end_admin_session() -> None:
    for key in (SESSION_KEY, SESSION_GENERATION, SESSION_SEEN):
        session.pop(key, None)
    g.pop("psp_principal", None)


def _lookup_principal() -> Principal | None:
    loader = current_app.config.get("PSP_ADMIN_USER_LOADER")
    if loader is not None:  # the host's own login owns its sessions (sign-out, idle time)
        principal = principal_from_loader(loader())
        if principal is not None:
            return principal
    user_id = session.get(SESSION_KEY)
    if user_id is None:
        return None
    user = db_session().get(AdminUser, user_id) if isinstance(user_id, int) else None
    principal = principal_for_user(user)
    if principal is None or session.get(SESSION_GENERATION) != user.session_generation:
        end_admin_session()  # signed out elsewhere, password changed, deactivated or deleted
        return None
    now = int(time.time())
    seen = session.get(SESSION_SEEN)
    idle = current_app.config.get("PSP_ADMIN_IDLE_MINUTES")
    if idle and (not isinstance(seen, int) or now - seen > float(idle) * 60):
        end_admin_session()
        g.psp_idle_signed_out = True
        return None
    if seen != now:
        session[SESSION_SEEN] = now
    return principal


def admin_locale() -> str:
    return buyer_locale(None)


def safe_next(target: str | None) -> str:
    """Only a path of this site: never an open redirect."""
    default = url_for("psp.admin_home")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def login_redirect():
    if g.pop("psp_idle_signed_out", False):
        say(_("You were signed out after %(minutes)s minutes without activity.",
              minutes=current_app.config["PSP_ADMIN_IDLE_MINUTES"]))
    if request.method != "GET":
        target = url_for("psp.admin_home")
    else:  # full_path ends with a bare "?" when there is no query string
        target = request.full_path if request.query_string else request.path
    host_login = current_app.config.get("PSP_ADMIN_LOGIN_URL")
    if host_login:
        return redirect(f"{host_login}{'&' if '?' in host_login else '?'}{urlencode({'next': target})}")
    return redirect(url_for("psp.admin_login", next=target))


def check_csrf() -> None:
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        abort(400, _("The form has expired. Please go back, reload the page and try again."))


def admin_route(rule: str, permission: Permission | None, methods=("GET",), endpoint: str | None = None):
    """Register an admin view: sign-in and role checked on the server, CSRF on every POST."""

    def decorator(view):
        name = endpoint or view.__name__

        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if permission is not None:
                principal = current_principal()
                if principal is None:
                    return login_redirect()
                if not principal.can(permission):
                    return forbidden(principal)
            if request.method == "POST":
                check_csrf()
            if _holds_nul():
                abort(400, _("A field holds a NUL character, which nothing stored can contain."))
            return view(*args, **kwargs)

        ROUTE_PERMISSIONS[f"psp.{name}"] = permission
        blueprint.add_url_rule(f"/admin{rule}", endpoint=name, view_func=wrapped, methods=list(methods))
        return wrapped

    return decorator


def _holds_nul() -> bool:
    """PostgreSQL refuses text with NUL characters even to compare it: such a query string or form
    is answered 400 before any query is made."""
    fields = [request.args] + ([request.form] if request.method == "POST" else [])
    return any("\x00" in key or "\x00" in value for multi in fields for key, value in multi.items(multi=True))


def forbidden(principal: Principal):
    return page("psp/admin/forbidden.html", 403, title=_("Not allowed"))


def page(template: str, status: int = 200, **context):
    """Render an admin page in the merchant's language, never cached, never framed."""
    locale = admin_locale()
    principal = context.pop("principal", None) or current_principal()
    look = PageSettings(brand_name=None, messages={}, provider_look={})
    with in_locale(locale):
        html, status = render(
            template, locale, status, settings=look, principal=principal, csrf_token=generate_csrf(),
            Permission=Permission, label=label, **context,
        )
    response = make_response(html, status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def say(message: str, category: str = "ok") -> None:
    flash(message, f"psp-{category}")


def saved(problems: list[str], again, message: str, endpoint: str, **values):
    """The answer to a settings form once saved: its ``problems`` undo the transaction and show the
    page again (``again(problems=problems, status=400)``); none: ``message`` and back to ``endpoint``.

    ``return saved(save_notifications(...), notifications, _("Notification settings saved."), "psp.admin_notifications")``
    """
    if problems:
        db_session().rollback()
        return again(problems=problems, status=400)
    say(message)
    return redirect(url_for(endpoint, **values), code=303)


def actor() -> str:
    principal = current_principal()
    return principal.name if principal else "?"
