"""Django settings of the peer (see the package's docstring)."""

import json
import os

from sqlalchemy.engine import make_url

_config = json.loads(os.environ.get("BENCH_PEER_CONFIG") or "{}")
_url = make_url(_config.get("database_url") or "postgresql://postgres@127.0.0.1:5432/bench")

SECRET_KEY = "bench-peer-secret-key"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "bench.peer.urls"
INSTALLED_APPS = ["payments", "bench.peer.apps.PeerConfig"]
# what `django-admin startproject` gives, less the sessions, authentication and messages nobody uses here
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.database,
        "USER": _url.username or "",
        "PASSWORD": _url.password or "",
        "HOST": _url.host or "",
        "PORT": str(_url.port or ""),
        "OPTIONS": {"options": f"-c search_path={_config.get('schema') or 'peer'}"},
        # one connection kept per thread, as Flask-SQLAlchemy's pool keeps them for the plugin
        "CONN_MAX_AGE": 600,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"handlers": ["console"], "level": "WARNING"},
           # the bench counts what each webhook was answered; a traceback per refused one says no more
           "loggers": {"django.request": {"level": "CRITICAL"}}}

PAYMENT_HOST = "127.0.0.1"
PAYMENT_USES_SSL = False
PAYMENT_MODEL = "peer.Payment"
PAYMENT_VARIANTS = {
    "stripe": ("payments.stripe.StripeProviderV3", {
        "api_key": "sk_test_bench",
        "endpoint_secret": _config.get("endpoint_secret") or "whsec_bench",
        "secure_endpoint": True,
    }),
}
