"""``POST /notify/<provider>``: the PSPs' server-to-server notifications."""

from __future__ import annotations

import logging

from flask import abort, current_app, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from ..config import whole
from ..extension import current_state
from ..events import InboxOutcome
from ..providers import provider_names
from ..providers.base import InboundRequest
from ..secret_box import safe_headers
from . import blueprint

log = logging.getLogger("flask_psp")
#: the inbox's content_type column
CONTENT_TYPE_LENGTH = 128


@blueprint.post("/notify/<provider>")
def notify(provider: str):
    if provider not in provider_names():
        abort(404)
    limit = whole(current_app.config, "PSP_MAX_NOTIFICATION_BYTES")
    body = _body_within(limit)
    if body is None:
        return _too_large(provider, limit)
    # the providers read form bodies themselves (providers.base.parse_form), with its limits
    inbound = InboundRequest(body=body, headers=dict(request.headers), content_type=_content_type())
    try:
        answer = current_state().service().take_notification(
            provider, inbound, request.remote_addr, queue=current_state().notification_queue()
        )
    except SQLAlchemyError:
        # not stored: the PSP must retry, so nothing is lost
        log.exception("could not store a %s notification", provider)
        current_state().db.session.rollback()
        return "could not store the notification, retry later", 503, {"Retry-After": "30"}
    return answer.body, answer.status, answer.headers


def _body_within(limit: int) -> bytes | None:
    """The body, or None when it is over ``limit`` bytes: a Content-Length over it is refused
    before anything is read, a body sent without one (chunked) once ``limit + 1`` bytes are in.
    This route's own limit, in place of the app's ``MAX_CONTENT_LENGTH``."""
    if request.content_length is not None and request.content_length > limit:
        return None
    request.max_content_length = limit + 1
    stream, parts, size = request.stream, [], 0
    try:
        while size <= limit:
            part = stream.read(limit + 1 - size)
            if not part:
                break
            parts.append(part)
            size += len(part)
    except RequestEntityTooLarge:
        return None
    return None if size > limit else b"".join(parts)


def _content_type() -> str | None:
    # as the inbox can keep it: PostgreSQL refuses NUL characters and longer values
    return request.content_type.replace("\x00", "\ufffd")[:CONTENT_TYPE_LENGTH] if request.content_type else None


def _too_large(provider: str, limit: int):
    """413, and a short inbox row saying so: its size and headers, never its body."""
    size = (f"{request.content_length} bytes" if request.content_length is not None
            else "more than that (sent without Content-Length)")
    detail = f"body too large: the limit (PSP_MAX_NOTIFICATION_BYTES) is {limit} bytes, this one had {size}; not kept"
    ledger = current_state().service().ledger
    try:
        row = ledger.receive(provider, "", headers=safe_headers(request.headers), content_type=_content_type(),
                             remote_addr=request.remote_addr)
        ledger.reject(row, InboxOutcome.INVALID, detail)
    except SQLAlchemyError:
        log.exception("could not store the short row of a too large %s notification", provider)
        current_state().db.session.rollback()
    return f"notification too large (over {limit} bytes)", 413
