"""Background processing on the shop's Celery (``pip install flask-psp[celery]``).

::

    from celery import Celery
    from flask_psp.celery_tasks import init_celery

    celery_app = Celery("shop", broker="redis://127.0.0.1:6379/0")
    app.config["PSP_TASK_QUEUE"] = "celery"
    init_celery(celery_app, app)          # after psp.init_app(app, …)

Notifications are then verified (signature, seal, verify API or re-fetch: the PSP still gets its
401/403/5xx when that fails), stored and acknowledged at once; a worker applies them through the
same ledger as inline processing. The inbox is the source of truth: a worker that dies mid-task
leaves its row ``queued``, and the ``sweep`` job queues it again. Notification e-mails are sent by
the workers too: a ``run_job("mail")`` task as soon as a mail is written, and beat for retries and
digests. ``init_celery`` also adds the
scheduled jobs to the beat schedule (``celery -A shop beat``), each every ``PSP_JOBS_INTERVAL``.

Tasks (names to route them, e.g. ``task_routes = {"flask_psp.*": {"queue": "payments"}}``):
``flask_psp.apply_notifications(event_ids)`` and ``flask_psp.run_job(name)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask

from .config import duration
from .extension import current_state
from .jobs import JOB_NAMES

log = logging.getLogger("flask_psp")

APPLY_TASK = "flask_psp.apply_notifications"
JOB_TASK = "flask_psp.run_job"
#: publishing to a broker that is down fails fast: the notification is then applied inline
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


@dataclass
class CeleryQueue:
    """The :class:`~flask_psp.payments.NotificationQueue` of an app whose workers run Celery."""

    celery_app: Any
    requeue_after: timedelta

    def enqueue(self, event_ids: list[int]) -> None:
        for event_id in event_ids:
            self.celery_app.send_task(APPLY_TASK, args=([event_id],), retry=True, retry_policy=PUBLISH_RETRY)

    def send_mail(self) -> None:
        """A worker sends the outbox's mails that are due (the ``mail`` job)."""
        self.celery_app.send_task(JOB_TASK, args=("mail",), retry=True, retry_policy=PUBLISH_RETRY)


def init_celery(celery_app, app: Flask, *, beat: bool = True) -> CeleryQueue:
    """Register the plugin's tasks on ``celery_app``; they run inside ``app``'s app context. With
    ``beat`` (default) the scheduled jobs join ``celery_app.conf.beat_schedule``."""
    if "psp" not in app.extensions:
        raise RuntimeError("call psp.init_app(app, …) before flask_psp.celery_tasks.init_celery(celery_app, app)")

    # acks_late: a message is only gone once its task finished; the sweeper covers the rest
    @celery_app.task(name=APPLY_TASK, acks_late=True, reject_on_worker_lost=True)
    def apply_notifications(event_ids: list[int]) -> list[str]:
        with app.app_context():
            outcomes = current_state().service().apply_queued([int(i) for i in event_ids])
            return [outcome.outcome.value for outcome in outcomes]

    @celery_app.task(name=JOB_TASK)
    def run_job(name: str) -> dict[str, int]:
        with app.app_context():
            state = current_state()
            queue = state.notification_queue()
            (report,) = state.run_jobs([name], enqueue=queue.enqueue if queue else None)
            if report.claimed:
                log.info("%s", report)
            return {"claimed": report.claimed, "done": report.done, "left": report.left}

    requeue_after = duration(app.config, "PSP_REQUEUE_AFTER")
    interval = duration(app.config, "PSP_JOBS_INTERVAL")
    queue = CeleryQueue(celery_app, requeue_after)
    app.extensions["psp"].task_queue = queue
    if beat:
        schedule = dict(celery_app.conf.beat_schedule or {})
        for name in JOB_NAMES:
            # a run not started before the next one is due is dropped: no backlog while workers are down
            schedule[f"flask-psp-{name}"] = {
                "task": JOB_TASK, "schedule": interval, "args": (name,),
                "options": {"expires": interval.total_seconds()},
            }
        celery_app.conf.beat_schedule = schedule
    return queue
