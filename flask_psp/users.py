"""Built-in merchant accounts for the admin panel."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .models import AdminUser

ROLES = ("owner", "manager", "accountant", "viewer")
MIN_PASSWORD_LENGTH = 10


def create_user(session: Session, email: str, password: str, role: str = "owner") -> AdminUser:
    email = email.strip().lower()
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if "@" not in email:
        raise ValueError("a user is identified by an email address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"passwords have at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(AdminUser).where(AdminUser.email == email)) is not None:
        raise ValueError(f"{email} already exists")
    user = AdminUser(email=email, password_hash=generate_password_hash(password), role=role)
    session.add(user)
    session.commit()
    return user


def set_password(session: Session, user: AdminUser, password: str) -> int:
    """Give ``user`` a new password and end every session they have open; returns the new session
    generation, which the session that made the change keeps (it stays signed in). Commits.

        generation = set_password(db.session, user, "a-new-long-password")
    """
    from .access import sign_out_everywhere

    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"passwords have at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = generate_password_hash(password)
    generation = sign_out_everywhere(user)
    session.commit()
    return generation


def check_password(user: AdminUser, password: str) -> bool:
    return check_password_hash(user.password_hash, password)
