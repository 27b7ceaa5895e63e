"""The audit log: who did what (never a secret: callers pass field names, not values)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AuditEntry


def audit(session: Session, actor: str, action: str, target: str | None = None, details: dict | None = None,
          *, commit: bool = True) -> AuditEntry:
    """Record who did what. ``details`` must never hold a secret: callers pass field names, not values."""
    entry = AuditEntry(actor=actor[:255], action=action[:64], target=(target or "")[:255] or None,
                       details=details or {})
    session.add(entry)
    if commit:
        session.commit()
    return entry


def audit_page(session: Session, before_id: int | None = None, limit: int = 50, actor: str | None = None,
               action: str | None = None) -> tuple[list[AuditEntry], int | None]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if before_id:
        query = query.where(AuditEntry.id < before_id)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    rows = list(session.scalars(query.limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)
