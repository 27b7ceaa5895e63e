"""Deprecated name of :mod:`flask_psp.celery_tasks` (kept so that shops following the first
README still start); import ``init_celery`` from ``flask_psp.celery_tasks``."""

import warnings

from .celery_tasks import APPLY_TASK, JOB_TASK, CeleryQueue, init_celery  # noqa: F401

warnings.warn("flask_psp.celery is now flask_psp.celery_tasks", DeprecationWarning, stacklevel=2)
