"""What choosing a provider's credentials costs a notification, as ``PSP_PROVIDERS`` configures them
and as the admin panel keeps them (a row with encrypted credentials), in process:

    PG_URL=postgresql://postgres@127.0.0.1:5432/mydb python -m bench.provider_rows

``make bench`` configures its shop in ``PSP_PROVIDERS``; a merchant who manages the providers in the
admin panel pays, on every notification, a read of the provider's row and the decryption of its
credentials, and — for a test payment — another read of the mode in force, under the lock. This
part measures those reads (CPU per call, ``thread_time``), the two ways taking turns call by call,
for each of the five providers, the session holding its connection already (what a notification's
first statement costs is paid either way).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import sqlalchemy as sa
from cryptography.fernet import Fernet

from .servers import PROVIDERS, SIMULATOR_CREDENTIALS

def measure(database_url: str, calls: int = 2000, log=print) -> dict:
    """CPU µs per call of ``PaymentService.provider(name, "test")`` (what a notification does to
    choose its credentials) and of the mode-in-force read, configuration against admin panel, the
    two taking turns. Adds five rows to ``psp_provider_settings`` and takes them out again."""
    from example_shop import create_app, db
    from flask_psp.extension import current_state
    from flask_psp.models import ProviderSettings

    key = Fernet.generate_key().decode()
    base = {"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": database_url, "PSP_ENCRYPTION_KEY": key}
    configured = {name: {"enabled": True, "mode": "test", "capture": "auto", "test": dict(SIMULATOR_CREDENTIALS[name])}
                  for name in PROVIDERS}
    by_config = create_app({**base, "PSP_PROVIDERS": configured})
    by_panel = create_app({**base, "PSP_PROVIDERS": {}})
    with by_panel.app_context():
        box = current_state().settings.box
        db.session.execute(sa.delete(ProviderSettings).where(ProviderSettings.name.in_(PROVIDERS)))
        db.session.add_all(ProviderSettings(name=name, enabled=True, mode="test", capture="auto",
                                            credentials=box.encrypt({"test": SIMULATOR_CREDENTIALS[name], "live": {}}))
                           for name in PROVIDERS)
        db.session.commit()
    results = {}
    try:
        contexts = {"config": by_config.app_context(), "panel": by_panel.app_context()}
        services = {}
        for way, context in contexts.items():
            context.push()
            services[way] = current_state().service()
            context.pop()
        for what in ("credentials", "mode_in_force"):
            spent = {"config": [], "panel": []}
            for i in range(calls):
                name = PROVIDERS[i % len(PROVIDERS)]
                for way in ("config", "panel") if i % 2 else ("panel", "config"):
                    contexts[way].push()
                    service = services[way]
                    service.session.connection()  # as in a request: its first statement took the connection
                    began = time.thread_time()
                    if what == "credentials":
                        found = service.provider(name, "test")
                    else:
                        found = service.settings.mode_in_force(service.session, name)
                    spent[way].append(time.thread_time() - began)
                    if not found:
                        raise RuntimeError(f"{way}: no {what} for {name}")
                    service.session.rollback()
                    contexts[way].pop()
            config_us, panel_us = (round(statistics.mean(spent[way]) * 1e6, 1) for way in ("config", "panel"))
            results[what] = {"config_us": config_us, "panel_us": panel_us,
                             "panel_extra_us": round(panel_us - config_us, 1)}
            log(f"  {what:<14} PSP_PROVIDERS {config_us:7.1f} µs | admin panel {panel_us:7.1f} µs per call")
    finally:
        with by_panel.app_context():
            db.session.execute(sa.delete(ProviderSettings).where(ProviderSettings.name.in_(PROVIDERS)))
            db.session.commit()
            db.engine.dispose()
        with by_config.app_context():
            db.engine.dispose()
    return results


def main() -> int:
    url = os.environ.get("PG_URL")
    if not url:
        print("set PG_URL to a PostgreSQL database with flask-psp's tables", file=sys.stderr)
        return 2
    measure(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
