"""The example shop with ``PSP_TASK_QUEUE = "celery"``, as the Celery benchmark runs it: gunicorn
serves ``bench.celery_shop:app`` (notifications verified, stored, queued and acknowledged), and
Celery workers run ``bench.celery_shop:celery_app`` (the queued rows applied through the ledger).

Configured by ``BENCH_SHOP_CONFIG`` (the shop's JSON, as bench/shop_app.py) and ``BENCH_CELERY_BROKER``
(a Redis URL with a database index of the bench's own)."""

from __future__ import annotations

import json
import os

from celery import Celery

from example_shop import create_app
from flask_psp.celery_tasks import init_celery


def make(config: dict, broker: str):
    """(Flask app, Celery app, the plugin's queue) for ``config`` with the notifications on ``broker``."""
    app = create_app({**config, "PSP_TASK_QUEUE": "celery"})
    celery_app = Celery("bench_shop", broker=broker)
    # Celery's defaults otherwise (prefetch 4: a killed worker takes the messages it holds with it)
    celery_app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)
    queue = init_celery(celery_app, app, beat=False)
    return app, celery_app, queue


if "BENCH_SHOP_CONFIG" in os.environ and "BENCH_CELERY_BROKER" in os.environ:
    app, celery_app, _queue = make(json.loads(os.environ["BENCH_SHOP_CONFIG"]), os.environ["BENCH_CELERY_BROKER"])
