"""The overview alone, in process, at a size of your choosing — a quick check between full runs:

    PG_URL=postgresql://postgres@127.0.0.1:5432/mydb BENCH_ADMIN_ROWS=200000 python -m bench.overview

The database is emptied and loaded as ``make bench`` loads it (bench/admin.py); the page is asked
for through Flask's test client (no HTTP server), so the figures are the view's own time.
"""

from __future__ import annotations

import os
import re
import sys
import time

import sqlalchemy as sa
from cryptography.fernet import Fernet

from . import admin
from .load import percentile
from .servers import prepare_database


def main() -> int:
    url = os.environ.get("PG_URL")
    if not url:
        print("set PG_URL to a PostgreSQL database this check may empty", file=sys.stderr)
        return 2
    rows = int(os.environ.get("BENCH_ADMIN_ROWS") or 200_000)
    repeat = int(os.environ.get("BENCH_ADMIN_REPEAT") or 20)
    prepare_database(url)
    from example_shop import create_app, db, psp

    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                      "PSP_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                      "PSP_PROVIDERS": {}})
    with app.app_context():
        psp.create_user("bench@example.com", "bench-merchant-password", role="owner")
        db.engine.dispose()
    engine = sa.create_engine(url)
    began = time.monotonic()
    admin.bulk_load(engine, rows)
    engine.dispose()
    print(f"{rows:,} payments loaded in {time.monotonic() - began:.1f} s")
    client = app.test_client()
    login = client.get("/psp/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    answer = client.post("/psp/admin/login", data={"email": "bench@example.com", "password": "bench-merchant-password",
                                                   "csrf_token": token})
    assert answer.status_code == 303, answer.status_code
    for name, args in admin.overview_shapes():
        client.get("/psp/admin/", query_string=args)  # warm
        times = []
        for _ in range(repeat):
            start = time.monotonic()
            page = client.get("/psp/admin/", query_string=args)
            times.append((time.monotonic() - start) * 1000)
            assert page.status_code == 200, page.status_code
        print(f"  {name:<36} p50 {percentile(times, 50):7.1f} p95 {percentile(times, 95):7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
