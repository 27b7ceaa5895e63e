"""Who may do what in the admin panel. No Flask here: roles, permissions, built-in account login
with lockout, and the normalisation of what a host's user loader returns.

Two ways in:

* the host shop's own login: ``PSP_ADMIN_USER_LOADER`` is a callable returning the current user
  (an object with ``.email`` and ``.role``, or a ``(name, role)`` tuple) or ``None``;
* built-in accounts (:class:`~flask_psp.models.AdminUser`): hashed passwords, lockout after
  repeated failures, ``flask psp create-user``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .models import AdminUser, utcnow

ROLES = ("owner", "manager", "accountant", "viewer")
#: a hash to check against when the email is unknown, so both cases take the same time
_DUMMY_HASH = generate_password_hash("flask-psp timing equaliser")


class Permission(str, enum.Enum):
    VIEW_PAYMENTS = "view_payments"  # payments, inbox, dashboard
    VIEW_SETTINGS = "view_settings"  # providers, page, notifications, accounting (read)
    VIEW_AUDIT = "view_audit"
    EDIT_PROVIDERS = "edit_providers"  # credentials, modes, test connection
    EDIT_PAGE = "edit_page"
    EDIT_NOTIFICATIONS = "edit_notifications"
    OPERATE = "operate"  # capture, refund, cancel, process again
    EDIT_ACCOUNTING = "edit_accounting"
    EXPORT = "export"
    MANAGE_USERS = "manage_users"


P = Permission
GRANTS: dict[str, frozenset[Permission]] = {
    "owner": frozenset(Permission),
    "manager": frozenset(
        {P.VIEW_PAYMENTS, P.VIEW_SETTINGS, P.VIEW_AUDIT, P.EDIT_PROVIDERS, P.EDIT_PAGE, P.EDIT_NOTIFICATIONS, P.OPERATE}
    ),
    "accountant": frozenset({P.VIEW_PAYMENTS, P.VIEW_SETTINGS, P.VIEW_AUDIT, P.EDIT_ACCOUNTING, P.EXPORT}),
    "viewer": frozenset({P.VIEW_PAYMENTS}),
}


def allows(role: str | None, permission: Permission) -> bool:
    return permission in GRANTS.get(role or "", frozenset())


@dataclass(frozen=True)
class Principal:
    """The person using the panel, whichever way they came in."""

    name: str  # email or the host's user name; written to the audit log
    role: str
    source: str  # "builtin" | "host"
    user_id: int | None = None

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)


def principal_from_loader(value) -> Principal | None:
    """Normalise what ``PSP_ADMIN_USER_LOADER`` returned. Unknown roles get no access at all."""
    if value is None:
        return None
    if isinstance(value, tuple):
        if len(value) != 2:
            raise TypeError("PSP_ADMIN_USER_LOADER must return (name, role), an object with .email/.role, or None")
        name, role = value
    else:
        if getattr(value, "is_authenticated", True) is False:  # Flask-Login's AnonymousUserMixin
            return None
        name = getattr(value, "email", None) or getattr(value, "name", None) or str(value)
        role = getattr(value, "role", None)
    if not name or role not in ROLES:
        return None
    return Principal(str(name), role, "host")


# ---------------------------------------------------------------------------- built-in accounts
class LoginRefused(Exception):
    """Wrong email or password, inactive or locked account. ``locked_until`` says how long."""

    def __init__(self, reason: str, locked_until: datetime | None = None):
        super().__init__(reason)
        self.reason = reason  # "bad_credentials" | "locked"
        self.locked_until = locked_until


def find_user(session: Session, email: str) -> AdminUser | None:
    email = (email or "").strip().lower()
    if not email:
        return None
    return session.scalar(select(AdminUser).where(func.lower(AdminUser.email) == email))


def authenticate(
    session: Session,
    email: str,
    password: str,
    *,
    max_failures: int = 5,
    lockout: timedelta = timedelta(minutes=15),
    now: datetime | None = None,
) -> AdminUser:
    """Check a login. ``max_failures`` wrong passwords in a row lock the account for ``lockout``;
    a locked account refuses even the right password until the lock expires. Commits."""
    now = now or utcnow()
    user = find_user(session, email)
    if user is None or not user.active:
        check_password_hash(_DUMMY_HASH, password or "")
        raise LoginRefused("bad_credentials")
    if user.locked_until is not None and user.locked_until > now:
        raise LoginRefused("locked", user.locked_until)
    if not check_password_hash(user.password_hash, password or ""):
        if user.locked_until is not None:  # an expired lock: start counting afresh
            user.locked_until, user.failed_logins = None, 0
        user.failed_logins = (user.failed_logins or 0) + 1
        locked = None
        if user.failed_logins >= max_failures:
            user.locked_until = locked = now + lockout
            user.failed_logins = 0
        session.commit()
        raise LoginRefused("locked" if locked else "bad_credentials", locked)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    session.commit()
    return user


def principal_for_user(user: AdminUser | None) -> Principal | None:
    if user is None or not user.active or user.role not in ROLES:
        return None
    return Principal(user.email, user.role, "builtin", user.id)


def owners_left(session: Session, excluding: int | None = None) -> int:
    query = select(func.count()).select_from(AdminUser).where(AdminUser.role == "owner", AdminUser.active.is_(True))
    if excluding is not None:
        query = query.where(AdminUser.id != excluding)
    return session.scalar(query) or 0
