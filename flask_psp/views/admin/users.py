"""The panel's own accounts and their roles."""

from __future__ import annotations

from flask import abort, redirect, request, url_for

from ...admin.audit import audit
from ...admin.users import list_users, update_user
from ...access import ROLES, Permission
from ...i18n import gettext as _
from ...models import AdminUser
from ...users import MIN_PASSWORD_LENGTH, create_user
from .base import actor, admin_route, db_session, page, saved, say


@admin_route("/users", Permission.MANAGE_USERS, endpoint="admin_users")
def users(problems=None, status=200):
    return page("psp/admin/users.html", status, title=_("Users"), users=list_users(db_session()), roles=ROLES,
                problems=problems or [], min_length=MIN_PASSWORD_LENGTH)


@admin_route("/users", Permission.MANAGE_USERS, methods=("POST",), endpoint="admin_user_create")
def user_create():
    email = (request.form.get("email") or "").strip()
    role = request.form.get("role", "viewer")
    try:
        create_user(db_session(), email, request.form.get("password") or "", role)
    except ValueError as exc:
        db_session().rollback()
        return users(problems=[str(exc)], status=400)
    audit(db_session(), actor(), "user.create", email.lower(), {"role": role})
    say(_("Account created."))
    return redirect(url_for("psp.admin_users"), code=303)


@admin_route("/users/<int:user_id>", Permission.MANAGE_USERS, methods=("POST",), endpoint="admin_user_update")
def user_update(user_id: int):
    user = db_session().get(AdminUser, user_id)
    if user is None:
        abort(404)
    problems = update_user(db_session(), user, request.form, actor())
    return saved(problems, users, _("Account updated."), "psp.admin_users")
