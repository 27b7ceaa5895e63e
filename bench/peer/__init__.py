"""The peer of the notifications benchmark: django-payments 4.1 with its Stripe V3 provider, in the
smallest Django project that takes Stripe's webhooks the way its documentation says — a concrete
``Payment`` model, ``payments.urls`` mounted, the Stripe variant with its endpoint secret — and a
receiver of its ``status_changed`` signal, where a Django shop marks its order paid: here it keeps
one row per call, so the bench can count how many times the signal fired.

Served by gunicorn like the plugin (``bench.peer.wsgi:application``), configured by the
``BENCH_PEER_CONFIG`` environment variable (JSON: ``database_url``, ``schema``, ``endpoint_secret``);
its tables live in a schema of their own in the bench's database. Installed by the ``bench-peer``
extra, which ``make bench`` installs in a virtualenv of its own (``.venv-peer``: its package
``payments`` must not stand beside ``flask_psp.payments``).
"""
