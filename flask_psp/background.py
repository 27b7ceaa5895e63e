"""The Flask side of background processing and scheduled jobs: reads the ``PSP_*`` keys and builds
the Flask-free pieces (:class:`~flask_psp.payments.PaymentService`, :class:`~flask_psp.jobs.Jobs`)
for the current app. Used by the notify view, ``flask psp run-jobs`` and ``flask_psp.celery``."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Iterable, Mapping

from flask import current_app

from .config import ConfigurationError
from .jobs import JOB_NAMES, JobReport, Jobs, JobSettings
from .ledger import RetryPolicy
from .payments import NotificationQueue, PaymentService

log = logging.getLogger("flask_psp")
TASK_QUEUES = (None, "celery")
#: where flask_psp.celery.init_celery leaves its queue in app.extensions
QUEUE_EXTENSION = "psp_task_queue"


def duration(config: Mapping[str, Any], key: str) -> timedelta:
    value = config[key]
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value
    else:
        raise ConfigurationError(f"{key} must be a number of seconds or a timedelta, not {value!r}")
    if seconds <= 0:
        raise ConfigurationError(f"{key} must be positive")
    return timedelta(seconds=seconds)


def whole(config: Mapping[str, Any], key: str) -> int:
    value = config[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"{key} must be a whole number of at least 1, not {value!r}")
    return value


def retry_policy(config: Mapping[str, Any]) -> RetryPolicy:
    return RetryPolicy(duration(config, "PSP_RETRY_FIRST_DELAY"), whole(config, "PSP_RETRY_MAX_ATTEMPTS"))


def job_settings(config: Mapping[str, Any]) -> JobSettings:
    return JobSettings(
        batch_size=whole(config, "PSP_JOBS_BATCH"),
        hold=duration(config, "PSP_JOBS_HOLD"),
        requeue_after=duration(config, "PSP_REQUEUE_AFTER"),
        reconcile_after=duration(config, "PSP_RECONCILE_AFTER"),
        reconcile_every=duration(config, "PSP_RECONCILE_EVERY"),
        expire_after=duration(config, "PSP_EXPIRE_AFTER"),
        retry=retry_policy(config),
    )


def service() -> PaymentService:
    """The current app's payment service (with the configured retry policy)."""
    return current_app.extensions["psp"].service()


def notification_queue() -> NotificationQueue | None:
    """Where the current app's notifications go once verified: None applies them inline."""
    kind = current_app.config.get("PSP_TASK_QUEUE")
    if kind not in TASK_QUEUES:
        raise ConfigurationError(f"PSP_TASK_QUEUE must be None or 'celery', not {kind!r}")
    if kind is None:
        return None
    queue = current_app.extensions.get(QUEUE_EXTENSION)
    if queue is None:
        # misconfigured, but a proven notification must not be lost: applied inline meanwhile
        log.error("PSP_TASK_QUEUE is 'celery' but flask_psp.celery.init_celery(celery_app, app) was not called")
    return queue


def jobs(enqueue=None) -> Jobs:
    return Jobs(service(), job_settings(current_app.config), enqueue=enqueue,
                mailer=current_app.extensions["psp"].mailer)


def run_jobs(names: Iterable[str] = JOB_NAMES, enqueue=None) -> list[JobReport]:
    """Run the named jobs once on the current app (``flask psp run-jobs``, the beat tasks)."""
    return jobs(enqueue).run(names)
