"""Built-in accounts as the panel's users page changes them: role, active, unlock."""

from __future__ import annotations

from typing import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..access import ROLES, owners_left
from ..i18n import gettext as _
from ..models import AdminUser
from .audit import audit


def list_users(session: Session) -> list[AdminUser]:
    return list(session.scalars(select(AdminUser).order_by(AdminUser.email)))


def update_user(session: Session, user: AdminUser, form: Mapping[str, str], actor: str) -> list[str]:
    role = form.get("role", user.role)
    active = form.get("active") in ("on", "1")
    if role not in ROLES:
        return [_("Unknown role.")]
    if user.role == "owner" and (role != "owner" or not active) and owners_left(session, excluding=user.id) == 0:
        return [_("There must remain at least one active owner.")]
    changes = {}
    if role != user.role:
        changes["role"] = [user.role, role]
        user.role = role
    if active != user.active:
        changes["active"] = [user.active, active]
        user.active = active
    if form.get("unlock") in ("on", "1") and (user.locked_until or user.failed_logins):
        user.locked_until, user.failed_logins, user.lockouts = None, 0, 0
        changes["unlocked"] = True
    if changes:
        audit(session, actor, "user.update", user.email, changes, commit=False)
    session.commit()
    return []
