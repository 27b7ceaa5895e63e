"""The example shop as gunicorn serves it in the benchmarks: ``bench.shop_app:app``, with the
configuration (database, providers pointing at the simulators, public URL) read as JSON from the
``BENCH_SHOP_CONFIG`` environment variable. The bench runs the plugin's migrations once before it
starts gunicorn, so each worker's ``create_app`` finds the schema at head and changes nothing."""

from __future__ import annotations

import json
import os

from example_shop import create_app

app = create_app(json.loads(os.environ["BENCH_SHOP_CONFIG"]))
