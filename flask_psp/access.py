"""Who may do what in the admin panel. No Flask here: roles, permissions, built-in account login
with lockout, and the normalisation of what a host's user loader returns.

Two ways in:

* the host shop's own login: ``PSP_ADMIN_USER_LOADER`` is a callable returning the current user
  (an object with ``.email`` and ``.role``, or a ``(name, role)`` tuple) or ``None``;
* built-in accounts (:class:`~flask_psp.models.AdminUser`): hashed passwords, growing delays after
  repeated failures (:class:`Throttle`), ``flask psp create-user``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .models import AdminUser, AuditEntry, LoginThrottle, utcnow

ROLES = ("owner", "manager", "accountant", "viewer")
#: a hash to check against when the email is unknown, so both cases take the same time
_DUMMY_HASH = generate_password_hash("flask-psp timing equaliser")


class Permission(str, enum.Enum):
    VIEW_PAYMENTS = "view_payments"  # payments, inbox, dashboard
    VIEW_SETTINGS = "view_settings"  # providers, page, notifications, accounting (read)
    VIEW_AUDIT = "view_audit"
    EDIT_PROVIDERS = "edit_providers"  # credentials, modes, test connection
    EDIT_ENDPOINTS = "edit_endpoints"  # where a provider's secrets are sent: the owner only
    EDIT_PAGE = "edit_page"
    EDIT_NOTIFICATIONS = "edit_notifications"
    OPERATE = "operate"  # capture, refund, cancel, process again
    EDIT_ACCOUNTING = "edit_accounting"
    EXPORT = "export"
    MANAGE_USERS = "manage_users"
    MANAGE_LINKS = "manage_links"  # payment links: create, send again, cancel


P = Permission
GRANTS: dict[str, frozenset[Permission]] = {
    "owner": frozenset(Permission),
    "manager": frozenset(
        {P.VIEW_PAYMENTS, P.VIEW_SETTINGS, P.VIEW_AUDIT, P.EDIT_PROVIDERS, P.EDIT_PAGE, P.EDIT_NOTIFICATIONS, P.OPERATE,
         P.MANAGE_LINKS}
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
    """A sign-in refused: wrong email or password, inactive account, or a delay still running.
    ``reason`` ("bad_credentials" | "locked") is for logs and tests; the visitor is given one answer
    for every refusal, so that it never tells which accounts exist or are locked."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Throttle:
    """The delays after failed sign-ins (OWASP's authentication cheat sheet: throttle per account and
    per client address, with growing delays, without letting a stranger lock the owner out for good).

    * ``max_failures`` failures in a row from one client address (whatever the email, known or not)
      block that address for ``first_delay``; each further lockout of that address doubles the delay,
      up to ``max_delay``. A successful sign-in from the address forgets it.
    * ``max_failures`` failures in a row on one account lock it the same way (doubling, capped). The
      lock holds against addresses that have failed recently, not against a *clean* one (no failure
      on record): the owner signing in from their usual place gets in while a stranger's guesses
      keep the account locked, and each new address a stranger brings gets one guess per lock.
    * A record older than ``max_delay`` with no lock running is forgotten.

        >>> Throttle(5, timedelta(minutes=15), timedelta(hours=24)).delay(3)
        datetime.timedelta(seconds=3600)
    """

    max_failures: int = 5
    first_delay: timedelta = timedelta(minutes=15)
    max_delay: timedelta = timedelta(hours=24)

    def delay(self, lockouts: int) -> timedelta:
        """How long the ``lockouts``-th lockout in a row lasts (1: ``first_delay``)."""
        return min(self.first_delay * 2 ** min(max(lockouts, 1) - 1, 20), self.max_delay)

    def stale(self, last_failure: datetime | None, locked_until: datetime | None, now: datetime) -> bool:
        if locked_until is not None and locked_until > now:
            return False
        return last_failure is None or last_failure + self.max_delay < now


def find_user(session: Session, email: str) -> AdminUser | None:
    email = (email or "").strip().lower()
    if not email or len(email) > 255 or "\x00" in email:  # no account has such an email (PostgreSQL refuses NUL)
        return None
    return session.scalar(select(AdminUser).where(func.lower(AdminUser.email) == email))


def authenticate(
    session: Session,
    email: str,
    password: str,
    *,
    address: str | None = None,
    throttle: Throttle = Throttle(),
    now: datetime | None = None,
    signing_in: bool = True,
) -> AdminUser:
    """Check a sign-in from client ``address`` against the built-in accounts and :class:`Throttle`.
    Exactly one password hash is computed whatever the outcome (unknown email, wrong password,
    delay running, success), so the time taken tells nothing either. Writes one audit row per
    lockout (account or address), none per attempt. Commits.

        user = authenticate(session, "owner@shop.example", password, address=request.remote_addr)
    """
    now = now or utcnow()
    address = (address or "")[:64] or None
    user = find_user(session, email)
    if user is not None and not user.active:
        user = None
    matches = check_password_hash(user.password_hash if user is not None else _DUMMY_HASH, password or "")
    try:
        return _settle(session, user, matches and user is not None, address, throttle, now, signing_in)
    except IntegrityError:  # two first failures from one address at once: the other one counted
        session.rollback()
        raise LoginRefused("bad_credentials") from None


def _settle(session: Session, user: AdminUser | None, matches: bool, address: str | None, throttle: Throttle,
            now: datetime, signing_in: bool) -> AdminUser:
    if user is not None:  # under a row lock from here: concurrent attempts count one by one
        session.refresh(user, with_for_update=True)
        if throttle.stale(user.last_failure_at, user.locked_until, now):
            user.failed_logins, user.lockouts = 0, 0
    origin = session.get(LoginThrottle, address, with_for_update=True) if address else None
    if origin is not None and throttle.stale(origin.last_failure_at, origin.blocked_until, now):
        session.delete(origin)
        session.flush()
        origin = None
    clean = origin is None
    if origin is not None and origin.blocked_until is not None and origin.blocked_until > now:
        session.rollback()
        raise LoginRefused("locked")
    if user is not None and user.locked_until is not None and user.locked_until > now and not clean:
        session.rollback()
        raise LoginRefused("locked")
    if not matches:
        if address:
            if origin is None:
                origin = LoginThrottle(address=address, failures=0, lockouts=0)
                session.add(origin)
            origin.failures += 1
            origin.last_failure_at = now
            if origin.failures >= throttle.max_failures:
                origin.failures, origin.lockouts = 0, origin.lockouts + 1
                origin.blocked_until = now + throttle.delay(origin.lockouts)
                _audit_lockout(session, address, "login.throttled", address, origin.lockouts, origin.blocked_until, now)
        if user is not None:
            user.failed_logins = (user.failed_logins or 0) + 1
            user.last_failure_at = now
            if user.failed_logins >= throttle.max_failures:
                user.failed_logins, user.lockouts = 0, (user.lockouts or 0) + 1
                user.locked_until = now + throttle.delay(user.lockouts)
                _audit_lockout(session, user.email, "login.locked", user.email, user.lockouts, user.locked_until, now,
                               address=address)
        session.commit()
        raise LoginRefused("bad_credentials")
    assert user is not None
    user.failed_logins, user.lockouts, user.locked_until = 0, 0, None
    if signing_in:
        user.last_login_at = now
    if origin is not None:
        session.delete(origin)
    session.commit()
    return user


def _audit_lockout(session: Session, actor: str, action: str, target: str, lockouts: int, until: datetime,
                   now: datetime, **details) -> None:
    minutes = round((until - now).total_seconds() / 60)
    session.add(AuditEntry(actor=actor[:255], action=action, target=target[:255],
                           details={"minutes": minutes, "lockout": lockouts, **details}))


def sign_out_everywhere(user: AdminUser) -> int:
    """End every panel session of ``user`` (sessions carry the generation they were opened with).
    Returns the new generation; the caller commits."""
    user.session_generation = (user.session_generation or 0) + 1
    return user.session_generation


def principal_for_user(user: AdminUser | None) -> Principal | None:
    if user is None or not user.active or user.role not in ROLES:
        return None
    return Principal(user.email, user.role, "builtin", user.id)


def owners_left(session: Session, excluding: int | None = None) -> int:
    query = select(func.count()).select_from(AdminUser).where(AdminUser.role == "owner", AdminUser.active.is_(True))
    if excluding is not None:
        query = query.where(AdminUser.id != excluding)
    return session.scalar(query) or 0
