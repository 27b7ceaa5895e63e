"""``POST /notify/<provider>``: the PSPs' server-to-server notifications."""

from __future__ import annotations

import logging

from flask import abort, request
from sqlalchemy.exc import SQLAlchemyError

from .. import background
from ..providers import provider_names
from ..providers.base import InboundRequest
from . import blueprint
from .common import state

log = logging.getLogger("flask_psp")


@blueprint.post("/notify/<provider>")
def notify(provider: str):
    if provider not in provider_names():
        abort(404)
    inbound = InboundRequest(
        body=request.get_data(cache=True),
        headers=dict(request.headers),
        form=request.form.to_dict() if request.mimetype == "application/x-www-form-urlencoded" else {},
        content_type=request.content_type,
    )
    try:
        answer = background.service().take_notification(
            provider, inbound, request.remote_addr, queue=background.notification_queue()
        )
    except SQLAlchemyError:
        # not stored: the PSP must retry, so nothing is lost
        log.exception("could not store a %s notification", provider)
        state().db.session.rollback()
        return "could not store the notification, retry later", 503, {"Retry-After": "30"}
    return answer.body, answer.status, answer.headers
