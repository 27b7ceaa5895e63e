"""The Celery worker of the test shop, for ``celery -A tests.celery.worker_app:celery_app worker``:
the shop (``tests.jobs.support``, configured by ``JOBS_SHOP_CONFIG``) on the broker and queue the
test names in ``JOBS_CELERY``; it says on Redis when it is ready to take tasks."""

from __future__ import annotations

import json
import os

import redis
from celery import Celery
from celery.signals import worker_ready

from flask_psp.celery_tasks import init_celery
from tests.jobs.support import create_app

settings = json.loads(os.environ["JOBS_CELERY"])
flask_app = create_app()
celery_app = Celery("psp-test-worker", broker=settings["broker"], backend=settings["broker"])
celery_app.conf.update(task_default_queue=settings["queue"], broker_connection_retry_on_startup=True,
                       result_expires=300, worker_enable_remote_control=False)
init_celery(celery_app, flask_app)


@worker_ready.connect
def say_ready(**_):
    redis.Redis.from_url(settings["broker"]).rpush(f"{settings['prefix']}:ready", os.getpid())
