"""``make bench``: flask-psp against minimal baselines, measured in the same run.

1. notifications: signed notifications of the five providers (PayPlug re-fetched, PayPal verified
   through the simulator), 20 % duplicates, over real HTTP to gunicorn; baseline: bench/baseline_app.py.
2. checkout start: ``POST /psp/checkout/<ref>`` → 303, against the provider call made directly.
3. the admin payments list with BENCH_ADMIN_ROWS payments: the view against its own SQL run bare;
   then the overview (money per provider, charts, failures, health) over the same payments.
4. the peak RSS of the gunicorn workers after each benchmark.
5. the accounting export (bench/export.py): FEC and CSV of BENCH_EXPORT_MOVEMENTS live movements,
   each in a fresh process — time, and peak RSS at a tenth and at all of them (streamed: the same).

Sizes and settings come from the environment (see ``Settings``); figures are printed and written to
bench/results.json (git-ignored).
"""

from __future__ import annotations

import collections
import contextlib
import threading
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import timezone

import psycopg
import sqlalchemy as sa
from cryptography.fernet import Fernet

from . import admin, export, flows, provider_rows
from .load import LoadGenerator, Request, percentile, summary
from .peer import webhooks as peer_webhooks
from .servers import (PROVIDERS, ROOT, Gunicorn, Simulators, baseline_server, floor_server, machine_cpu_seconds, peer_server,
                      postgres_cpu_seconds, prepare_database, prepare_peer, shop_config, shop_server)

REDIRECTING = ("adyen", "paypal", "payplug", "hipay")  # checkout answers 303 (Sips: an auto-submitting form)
PEER_SCHEMA = "django_peer"  # the peer's tables, in the bench's database
ADMIN_EMAIL, ADMIN_PASSWORD = "bench@example.com", "bench-merchant-password"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


@dataclass
class Settings:
    database_url: str = field(default_factory=lambda: os.environ.get("PG_URL")
                              or "postgresql://postgres@127.0.0.1:5432/bench")
    #: distinct notifications per concurrency level (spread over the five providers)
    notifications: int = field(default_factory=lambda: _env_int("BENCH_NOTIFICATIONS", 1000))
    duplicate_share: float = field(default_factory=lambda: float(os.environ.get("BENCH_DUPLICATES") or 0.2))
    concurrency: tuple = field(default_factory=lambda: tuple(
        int(c) for c in (os.environ.get("BENCH_CONCURRENCY") or "1,8,32").split(",")))
    workers: int = field(default_factory=lambda: _env_int("BENCH_WORKERS", 4))
    threads: int = field(default_factory=lambda: _env_int("BENCH_THREADS", 4))
    client_processes: int = field(default_factory=lambda: _env_int("BENCH_CLIENT_PROCESSES", 4))
    admin_rows: int = field(default_factory=lambda: _env_int("BENCH_ADMIN_ROWS", 1_000_000))
    admin_repeat: int = field(default_factory=lambda: _env_int("BENCH_ADMIN_REPEAT", 20))
    #: each comparison (plugin, floor, baseline) runs in this many slices, the apps taking turns slice
    #: by slice, so that a machine whose speed drifts during the run slows them alike
    rounds: int = field(default_factory=lambda: _env_int("BENCH_ROUNDS", 4))
    #: live movements the accounting export (FEC, CSV) is timed on (0: skipped)
    export_movements: int = field(default_factory=lambda: _env_int("BENCH_EXPORT_MOVEMENTS", 1_000_000))
    output: str = field(default_factory=lambda: os.environ.get("BENCH_OUTPUT")
                        or os.path.join(ROOT, "bench", "results.json"))
    seed: int = field(default_factory=lambda: _env_int("BENCH_SEED", 6))
    #: the Python of the peer's virtualenv (django-payments), which make bench makes: .venv-peer
    peer_python: str = field(default_factory=lambda: os.environ.get("BENCH_PEER_PYTHON")
                             or os.path.join(ROOT, ".venv-peer", "bin", "python"))
    #: the Celery benchmark: 2 workers on Redis (a database index of the bench's own); BENCH_CELERY=0 skips it
    celery: bool = field(default_factory=lambda: (os.environ.get("BENCH_CELERY") or "1") != "0")
    celery_broker: str = field(default_factory=lambda: os.environ.get("BENCH_CELERY_BROKER")
                               or "redis://127.0.0.1:6379/13")
    celery_workers: int = field(default_factory=lambda: _env_int("BENCH_CELERY_WORKERS", 2))
    #: PSP_REQUEUE_AFTER of the Celery run, seconds: how soon the sweeper may queue a lost row again
    celery_requeue_after: int = field(default_factory=lambda: _env_int("BENCH_CELERY_REQUEUE_AFTER", 5))
    #: a folder: py-spy samples the shop's workers during the plugin's runs at concurrency 8
    profile: str = field(default_factory=lambda: os.environ.get("BENCH_PROFILE") or "")


#: issue 15's targets, read from one run's results: (label, how to read the value, op, goal). A value
#: that is a ratio of two figures is measured in the same run; "n/a" when the run did not measure it.
def _at(section: str, level: str, *path: str):
    def read(r: dict):
        value = (r.get(section) or {}).get(level)
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value
    return read


def _p99_to_floor(level: str):
    def read(r: dict):
        entry = (r.get("notifications") or {}).get(level) or {}
        plugin, floor = (entry.get("plugin") or {}).get("p99_ms"), (entry.get("floor") or {}).get("p99_ms")
        return round(plugin / floor, 3) if plugin and floor else None
    return read


def _admin_p95_max(r: dict):
    return max((v["plugin"]["p95_ms"] for v in (r.get("admin") or {}).values()), default=None)


def _overview_p95_max(r: dict):
    return max((v["p95_ms"] for k, v in (r.get("overview") or {}).items() if "30 days" in k), default=None)


def _rss_max(r: dict):
    rss = [v["plugin"]["max_mb"] for v in r["rss"].values() if v["plugin"]["max_mb"]]
    return max(rss) if rss else None


def _celery_nothing_lost(r: dict):
    check = (r.get("celery") or {}).get("check")
    return None if check is None else int(bool(check["ok"]))


def targets_for(levels: list[str]) -> list[tuple]:
    notify = [(f"notifications: plugin ≥ 0.9 × floor at c = {c}",
               _at("notifications", c, "plugin_to_floor_ratio"), ">=", 0.9) for c in levels]
    peer = [(f"notifications: plugin ≥ 2.0 × the peer (django-payments) at c = {c}",
             _at("notifications", c, "plugin_to_peer_ratio"), ">=", 2.0) for c in levels]
    checkout = [(f"checkout start: plugin ≥ 0.8 × floor at c = {c}",
                 _at("checkout", c, "plugin_to_floor_ratio"), ">=", 0.8) for c in levels if c in ("1", "8")]
    return [
        *notify,
        ("notifications: plugin p99 ≤ 1.25 × floor p99 at c = 8", _p99_to_floor("8"), "<=", 1.25),
        ("notification p99 < 50 ms at c = 8", _at("notifications", "8", "plugin", "p99_ms"), "<", 50.0),
        *peer,
        *checkout,
        ("Celery: nothing lost when a worker is killed mid-run (1 = every order paid once)", _celery_nothing_lost,
         ">=", 1),
        ("admin list p95 < 100 ms (every query shape)", _admin_p95_max, "<", 100.0),
        ("admin overview p95 < 150 ms (last 30 days, live and test)", _overview_p95_max, "<", 150.0),
        ("worker peak RSS < 150 MB", _rss_max, "<", 150.0),
        ("FEC export of the movements < 30 s", _at("export", "fec all", "seconds"), "<", 30.0),
        ("FEC export's peak RSS grows < 20 MB from a tenth to all of the movements",
         lambda r: (r.get("export") or {}).get("peak_rss_growth_mb"), "<", 20.0),
    ]


def log(message: str) -> None:
    print(message, flush=True)


class Bench:
    def __init__(self, settings: Settings):
        self.s = settings
        self.random = random.Random(settings.seed)
        self.results: dict = {"settings": {k: v for k, v in asdict(settings).items() if k != "database_url"},
                              "database": sa.engine.make_url(settings.database_url).render_as_string(hide_password=True),
                              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                          "platform": platform.platform()},
                              "rss": {}}
        self.levels = ["warm-up"] + [str(c) for c in settings.concurrency]
        self.per_provider = {level: max(1, (settings.notifications if level != "warm-up"
                                            else max(25, settings.notifications // 4)) // len(PROVIDERS))
                             for level in self.levels}

    # ------------------------------------------------------------------------------------ set-up
    def setup(self) -> None:
        s = self.s
        log(f"database {self.results['database']}: emptied")
        prepare_database(s.database_url)
        self.engine = sa.create_engine(s.database_url)
        self.sims = Simulators()
        key = Fernet.generate_key().decode()
        self.key = key
        self.shop = shop_server(s.database_url, self.sims, s.workers, s.threads, key)
        self.sims.point_webhooks(self.shop.url)
        # migrations and seed once, here, before the workers start (each worker's create_app then changes nothing)
        from example_shop import create_app, db, psp

        self.app = create_app(shop_config(s.database_url, self.sims, key, self.shop.url))
        with self.app.app_context():
            psp.create_user(ADMIN_EMAIL, ADMIN_PASSWORD, role="owner")
            db.engine.dispose()
        with self.engine.begin() as connection:
            connection.execute(sa.text(
                "CREATE TABLE bench_baseline_order (reference varchar(64) PRIMARY KEY, "
                "status varchar(16) NOT NULL DEFAULT 'pending', paid_at timestamp)"))
        if s.admin_rows:
            log(f"loading {s.admin_rows:,} payments (generate_series) …")
            seconds = admin.bulk_load(self.engine, s.admin_rows)
            self.results["admin_load_seconds"] = round(seconds, 1)
            log(f"  loaded in {seconds:.1f} s")
        self.baseline = baseline_server(s.database_url, self.sims, s.workers, s.threads)
        self.floor = floor_server(s.database_url, self.sims, s.workers, s.threads, self.shop.url)
        self.shop.start("/products.json")
        self.baseline.start("/")
        self.floor.start("/")
        log(f"gunicorn: shop {self.shop.url}, baseline {self.baseline.url}, floor {self.floor.url} — "
            f"{s.workers} workers × {s.threads} threads")
        self.load = LoadGenerator(s.client_processes)
        self.orders = {level: {p: [f"BENCH-{level.upper()}-{p.upper()}-{i:05d}" for i in range(self.per_provider[level])]
                               for p in PROVIDERS} for level in self.levels}
        # the checkout floor's orders: their own, never paid (the checks read BENCH-% orders only)
        self.floor_orders = {level: {p: [f"FLOORCO-{level.upper()}-{p.upper()}-{i:05d}"
                                         for i in range(self.per_provider[level])] for p in REDIRECTING}
                             for level in self.levels}
        # the Celery run's orders (as many as a concurrency level's): CELERY-%, apart from the checks of BENCH-%
        # (and a quarter as many to warm the Celery shop up first: its broker connections, its workers)
        self.celery_orders = {part: {p: [f"CELERY-{part.upper()}-{p.upper()}-{i:05d}" for i in range(
            max(1, (s.notifications if part == "run" else max(25, s.notifications // 4)) // len(PROVIDERS)))]
            for p in PROVIDERS} for part in ("warm-up", "run")} if s.celery else {}
        flows.insert_orders(self.engine, [r for orders in (self.orders, self.floor_orders, self.celery_orders)
                                          for level in orders.values() for refs in level.values() for r in refs])
        self.cookie, self.csrf = flows.buyer_session(self.shop.url, self.orders["warm-up"]["adyen"][0])
        self.direct = flows.DirectCalls(self.sims, self.shop.url)

    @contextlib.contextmanager
    def profiled(self, name: str, level: str, server=None):
        """py-spy (collapsed stacks, one line per stack: ``frames count``) over the shop's workers
        (``server``: another's, e.g. the floor's, to read the plugin's profile against)."""
        if not self.s.profile or level != "8":
            yield
            return
        os.makedirs(self.s.profile, exist_ok=True)
        path = os.path.join(self.s.profile, f"{name}-c{level}.txt")
        spy = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "--format", "raw",
                                "--rate", "250", "--subprocesses", "--gil", "--nonblocking", "--pid",
                                str((server or self.shop).process.pid),
                                "--output", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
            log(f"  profile: {os.path.relpath(path, ROOT)}")

    def settle_database(self) -> None:
        """``VACUUM (ANALYZE)`` before a timed run: autovacuum, woken by the previous run's writes (or
        by the floor's reset of the same payments to pending), would otherwise work during the next
        run and take, on these two cores, CPU from whichever app is measured then (a floor at
        concurrency 1 slower than the plugin, with the same CPU per request, was seen)."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM (ANALYZE)"))

    def taking_turns(self, parts: list, concurrency: int, level: str, profiles: dict | None = None) -> dict:
        """Run each part's requests in ``rounds`` slices, the parts taking turns (each part's first
        slice, then each part's second…), every slice after :meth:`settle_database`. ``parts``:
        ``(name, slices, server, before_slice)`` — ``slices`` a list of request lists, one per round;
        ``before_slice(k)``, when given, runs before the part's slice ``k`` (untimed). ``profiles``:
        ``{part: profile name}``, the parts whose first slice py-spy samples. Returns ``{name: Tally}``."""
        tallies = {name: Tally() for name, *_rest in parts}
        for k in range(max(len(slices) for _name, slices, _server, _before in parts)):
            for name, slices, server, before_slice in parts:
                if k >= len(slices) or not slices[k]:
                    continue
                if before_slice is not None:
                    before_slice(k)
                self.settle_database()
                profiled = (self.profiled(profiles[name], level, server) if k == 0 and name in (profiles or {})
                            else contextlib.nullcontext())
                with profiled, cpu_used(server) as cpu:
                    samples, wall = self.load.run(slices[k], concurrency)
                tallies[name].add(samples, wall, cpu)
        return tallies

    def in_slices(self, items: list) -> list[list]:
        """``items`` cut into ``rounds`` consecutive slices."""
        rounds = max(1, min(self.s.rounds, len(items)))
        return [items[len(items) * k // rounds: len(items) * (k + 1) // rounds] for k in range(rounds)]

    def record_rss(self, after: str) -> None:
        self.results["rss"][after] = {"plugin": self.shop.peak_rss_mb(), "baseline": self.baseline.peak_rss_mb(),
                                      "floor": self.floor.peak_rss_mb()}

    # ------------------------------------------------------------------------------------ 2. checkout
    def checkouts(self) -> None:
        results = {}
        started = []
        direct_index = 0
        for level in self.levels:
            concurrency = 8 if level == "warm-up" else int(level)
            plugin_requests = [flows.checkout_request(self.shop, ref, provider, self.cookie, self.csrf)
                               for i in range(self.per_provider[level]) for provider in REDIRECTING
                               for ref in [self.orders[level][provider][i]]]
            direct_requests = []
            for request in plugin_requests:
                direct_requests.append(self.direct.request(request.tag.split("|")[0], direct_index))
                direct_index += 1
            floor_requests, committing_first = (
                [flows.checkout_request(self.floor, ref, provider, self.cookie, self.csrf, route)
                 for i in range(self.per_provider[level]) for provider in REDIRECTING
                 for ref in [self.floor_orders[level][provider][i]]]
                for route in ("checkout", "checkout-committing-first"))
            tallies = self.taking_turns([("plugin", self.in_slices(plugin_requests), self.shop, None),
                                         ("floor", self.in_slices(floor_requests), self.floor, None),
                                         ("committing first", self.in_slices(committing_first), self.floor, None),
                                         ("direct", self.in_slices(direct_requests), None, None)],
                                        concurrency, level, {"plugin": "checkout"})
            plugin, floor, first, direct = (tallies[name].samples
                                            for name in ("plugin", "floor", "committing first", "direct"))
            for name, samples in (("checkout", plugin), ("checkout floor", floor),
                                  ("checkout floor, committing first", first)):
                bad = [s for s in samples if s.status != 303]
                if bad:
                    raise RuntimeError(f"{name} answered {bad[0].status} ({bad[0].error or ''}) for {bad[0].tag}")
            if any(not 200 <= s.status < 300 for s in direct):
                raise RuntimeError("a direct provider call failed")
            started += [(s.tag.split("|")[0], s.location, None) for s in plugin]
            if level == "warm-up":
                continue
            a, f, c = (tallies[name].summary() for name in ("plugin", "floor", "committing first"))
            b = summary(direct, tallies["direct"].wall)
            results[level] = {"plugin": a, "baseline": b, "ratio": _ratio(a["throughput_rps"], b["throughput_rps"]),
                              "floor": f, "plugin_to_floor_ratio": _ratio(a["throughput_rps"], f["throughput_rps"]),
                              "floor_committing_first": c,
                              "plugin_to_floor_committing_first_ratio": _ratio(a["throughput_rps"],
                                                                               c["throughput_rps"])}
            log(f"  checkout c={level:>2}: plugin {a['throughput_rps']:7.1f}/s p50 {a['p50_ms']:6.1f} p99 "
                f"{a['p99_ms']:6.1f} ms | floor {f['throughput_rps']:7.1f}/s p50 {f['p50_ms']:6.1f} p99 "
                f"{f['p99_ms']:6.1f} ms | direct call {b['throughput_rps']:7.1f}/s p50 {b['p50_ms']:6.1f} p99 "
                f"{b['p99_ms']:6.1f} ms | plugin/floor {results[level]['plugin_to_floor_ratio']}, "
                f"plugin/direct {results[level]['ratio']}")
            log(f"           CPU ms per checkout, plugin | floor: workers {a['worker_cpu_ms_per_request']} | "
                f"{f['worker_cpu_ms_per_request']}, PostgreSQL {a['postgres_cpu_ms_per_request']} | "
                f"{f['postgres_cpu_ms_per_request']}")
            log(f"           floor committing the attempt first (as the plugin does): {c['throughput_rps']:7.1f}/s "
                f"p50 {c['p50_ms']:6.1f} p99 {c['p99_ms']:6.1f} ms, CPU ms per checkout: workers "
                f"{c['worker_cpu_ms_per_request']}, PostgreSQL {c['postgres_cpu_ms_per_request']} | plugin/it "
                f"{results[level]['plugin_to_floor_committing_first_ratio']}")
        # the Celery run's payments, started the same way (not measured)
        celery = [flows.checkout_request(self.shop, ref, provider, self.cookie, self.csrf)
                  for part in self.celery_orders.values() for provider in REDIRECTING for ref in part[provider]]
        samples, _ = self.load.run(celery, 8)
        if any(s.status != 303 for s in samples):
            raise RuntimeError("a checkout for the Celery run failed")
        started += [(s.tag.split("|")[0], s.location, None) for s in samples]
        # Sips: the checkout renders an auto-submitting form, no provider call: made for the notifications only
        sips = [flows.checkout_request(self.shop, ref, "sips", self.cookie, self.csrf)
                for orders in [*(self.orders[level] for level in self.levels), *self.celery_orders.values()]
                for ref in orders["sips"]]
        samples, _ = self.load.run(sips, 8)
        if any(s.status != 200 for s in samples):
            raise RuntimeError("Sips checkout failed")
        started += [("sips", None, s.body) for s in samples]
        self.results["checkout"] = results
        self.record_rss("checkout")
        log(f"  paying {len(started)} payments on the simulators' hosted pages …")
        flows.Buyer(self.sims).pay_all(started)

    # ------------------------------------------------------------------------------------ 1. notifications
    def notifications(self) -> None:
        found = flows.collect_notifications(self.sims.notifier, self.engine)
        self.found = found
        missing = [ref for orders in (*self.orders.values(), *self.celery_orders.values()) for refs in orders.values()
                   for ref in refs if ref not in found]
        if missing:
            raise RuntimeError(f"{len(missing)} payments made no notification (e.g. {missing[0]})")
        with self.engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO bench_baseline_order (reference) VALUES (:r)"),
                               [{"r": found[ref]["baseline_ref"]} for level in self.orders.values()
                                for refs in level.values() for ref in refs])
        results = {}
        self.expected = {p: {"applied": 0, "duplicate": 0} for p in PROVIDERS}
        self.plugin_orders = {"unpaid": 0, "marked_not_once": 0}
        order_of = {id(found[ref]): ref for level in self.orders.values() for refs in level.values() for ref in refs}
        sequences = {}
        for level in self.levels:
            concurrency = 8 if level == "warm-up" else int(level)
            distinct = [found[ref] for p in PROVIDERS for ref in self.orders[level][p]]
            self.random.shuffle(distinct)
            # a slice per round: its deliveries and their copies (a copy never lands in another slice)
            slices = [self.with_duplicates(part) for part in self.in_slices(distinct)]
            sequence = sequences[level] = [n for part in slices for n in part]
            copies = collections.Counter(id(n) for n in sequence)
            for n in distinct:
                self.expected[n["provider"]]["applied"] += 1
                self.expected[n["provider"]]["duplicate"] += copies[id(n)] - 1
            duplicates = len(sequence) - len(distinct)
            slice_orders = [sorted({order_of[id(n)] for n in part}) for part in slices]

            def to_the_floor(k, slice_orders=slice_orders):
                """Before the floor's slice: what the plugin did to these orders is checked, then
                their payments are put back to pending for the floor."""
                self.check_plugin_orders(slice_orders[k])
                self.back_to_pending(slice_orders[k])

            tallies = self.taking_turns(
                [("plugin", [[flows.notification_request(n, self.shop.port, n["provider"]) for n in part]
                             for part in slices], self.shop, None),
                 ("baseline", [[flows.notification_request(n, self.baseline.port, n["provider"]) for n in part]
                               for part in slices], self.baseline, None),
                 ("floor", [[flows.notification_request(n, self.floor.port, n["provider"]) for n in part]
                            for part in slices], self.floor, to_the_floor)],
                concurrency, level, {"plugin": "notify", "floor": "notify-floor"})
            plugin, baseline, floor = (tallies[name].samples for name in ("plugin", "baseline", "floor"))
            for name, samples in (("plugin", plugin), ("baseline", baseline), ("floor", floor)):
                bad = [x for x in samples if not 200 <= x.status < 300]
                if bad:
                    raise RuntimeError(f"{name}: {len(bad)} notifications answered {bad[0].status} {bad[0].error or ''}")
            if level == "warm-up":
                continue
            a, b, f = (tallies[name].summary() for name in ("plugin", "baseline", "floor"))
            by_provider = {p: {"p50_ms": round(percentile([x.latency * 1000 for x in plugin if x.tag == p], 50), 2),
                               "p99_ms": round(percentile([x.latency * 1000 for x in plugin if x.tag == p], 99), 2),
                               "baseline_p50_ms": round(percentile([x.latency * 1000 for x in baseline if x.tag == p], 50), 2)}
                           for p in PROVIDERS}
            entry = results[level] = {"plugin": a, "baseline": b, "ratio": _ratio(a["throughput_rps"], b["throughput_rps"]),
                                      "duplicates": duplicates, "plugin_by_provider": by_provider,
                                      "floor": f, "floor_ratio": _ratio(f["throughput_rps"], b["throughput_rps"]),
                                      "plugin_to_floor_ratio": _ratio(a["throughput_rps"], f["throughput_rps"])}
            log(f"  notify   c={level:>2}: plugin {a['throughput_rps']:7.1f}/s p50 {a['p50_ms']:6.1f} p99 "
                f"{a['p99_ms']:6.1f} ms | baseline {b['throughput_rps']:7.1f}/s p50 {b['p50_ms']:6.1f} p99 "
                f"{b['p99_ms']:6.1f} ms | ratio {entry['ratio']}  ({len(sequence)} requests, "
                f"{duplicates} duplicates)")
            log(f"           CPU ms per request, plugin | baseline: workers {a['worker_cpu_ms_per_request']} | "
                f"{b['worker_cpu_ms_per_request']}, PostgreSQL {a['postgres_cpu_ms_per_request']} | "
                f"{b['postgres_cpu_ms_per_request']}, whole machine {a['machine_cpu_ms_per_request']} | "
                f"{b['machine_cpu_ms_per_request']}")
            log(f"  floor    c={level:>2}: {f['throughput_rps']:7.1f}/s p50 {f['p50_ms']:6.1f} p99 {f['p99_ms']:6.1f} ms"
                f" | floor/baseline {entry['floor_ratio']}, plugin/floor {entry['plugin_to_floor_ratio']}"
                f" | CPU ms per request: workers {f['worker_cpu_ms_per_request']}, PostgreSQL "
                f"{f['postgres_cpu_ms_per_request']}, whole machine {f['machine_cpu_ms_per_request']}")
        self.results["notifications"] = results
        self.record_rss("notifications")
        self.results["notifications_check"] = self.check()
        self.floor_check(sequences)
        self.sequences = sequences

    def check_plugin_orders(self, refs: list[str]) -> None:
        """What the plugin did to these orders, read before the floor takes their payments again:
        each paid, and handed to ``mark_paid`` exactly once (summed for :meth:`check`)."""
        with self.engine.connect() as connection:
            self.plugin_orders["unpaid"] += connection.scalar(sa.text(
                "SELECT count(*) FROM shop_order WHERE reference = ANY(:refs) AND status <> 'paid'"), {"refs": refs})
            self.plugin_orders["marked_not_once"] += connection.scalar(sa.text(
                "SELECT count(*) FROM (SELECT order_ref FROM psp_payment WHERE order_ref = ANY(:refs) "
                "GROUP BY order_ref HAVING count(order_marked_at) <> 1) AS wrong"), {"refs": refs})

    def back_to_pending(self, refs: list[str]) -> None:
        """The payments of these orders as they were before their notifications, for the floor."""
        with self.engine.begin() as connection:
            connection.execute(sa.text(
                "UPDATE psp_payment SET status = 'pending', captured_amount = 0, authorized_amount = 0, "
                "paid_at = NULL, order_marked_at = NULL WHERE order_ref = ANY(:refs)"), {"refs": refs})
            connection.execute(sa.text("UPDATE shop_order SET status = 'pending' WHERE reference = ANY(:refs)"),
                               {"refs": refs})

    # ------------------------------------------------------------------------------------ 1b. the peer
    def peer_notifications(self) -> None:
        """The same deliveries — as many distinct ones per level, their copies at the same places —
        to django-payments' Stripe V3 webhook (bench/peer), as signed ``checkout.session.completed``
        events; then each payment must be confirmed, and the status signal's calls are counted."""
        python = os.path.abspath(self.s.peer_python)
        probe = ("import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) is None for m in "
                 "('django', 'gunicorn', 'payments', 'stripe', 'psycopg')))")
        found = os.access(python, os.X_OK) and subprocess.run([python, "-c", probe]).returncode == 0
        if not found:
            raise RuntimeError(f"the peer needs a Python with the bench-peer extra at {python} (make bench makes it: "
                               "python -m venv .venv-peer && .venv-peer/bin/pip install -e '.[bench-peer]'; "
                               "BENCH_PEER_PYTHON=… for another)")
        secret = "whsec_bench" + self.random.randbytes(12).hex()
        server = peer_server(python, self.s.database_url, self.s.workers, self.s.threads, PEER_SCHEMA, secret)
        distinct = {level: list({id(n): n for n in sequence}) for level, sequence in self.sequences.items()}
        tokens = iter(prepare_peer(server, PEER_SCHEMA, sum(len(d) for d in distinct.values()), self.s.database_url))
        server.start("/")
        results = self.results["notifications"]
        index = 0
        try:
            for level, sequence in self.sequences.items():
                # the same positions: the n-th distinct notification of the plugin's run is the n-th here
                deliveries = {}
                for key in distinct[level]:
                    body = peer_webhooks.checkout_completed(next(tokens), index)
                    index += 1
                    deliveries[key] = (body, {"Content-Type": "application/json",
                                              "Stripe-Signature": peer_webhooks.signature_header(body, secret)})
                requests = [Request("127.0.0.1", server.port, "POST", peer_webhooks.WEBHOOK_PATH, *deliveries[id(n)],
                                    tag="peer", keep_alive=False) for n in sequence]
                self.settle_database()
                with cpu_used(server) as peer_cpu:
                    samples, wall = self.load.run(requests, 8 if level == "warm-up" else int(level))
                bad = [x for x in samples if not 200 <= x.status < 300]
                if bad:
                    raise RuntimeError(f"peer: {len(bad)} webhooks answered {bad[0].status} {bad[0].error or ''}")
                if level == "warm-up":
                    continue
                p = summary(samples, wall)
                p.update(peer_cpu.per_request(len(samples)))
                entry = results[level]
                entry["peer"] = p
                entry["plugin_to_peer_ratio"] = _ratio(entry["plugin"]["throughput_rps"], p["throughput_rps"])
                log(f"  peer     c={level:>2}: {p['throughput_rps']:7.1f}/s p50 {p['p50_ms']:6.1f} p99 {p['p99_ms']:6.1f} ms"
                    f" | plugin/peer {entry['plugin_to_peer_ratio']} | CPU ms per request: workers "
                    f"{p['worker_cpu_ms_per_request']}, PostgreSQL {p['postgres_cpu_ms_per_request']}, whole machine "
                    f"{p['machine_cpu_ms_per_request']}")
            # one webhook whose signature is wrong: what does the peer answer?
            body = peer_webhooks.checkout_completed("00000000-0000-0000-0000-000000000000", index)
            forged, _ = self.load.run([Request("127.0.0.1", server.port, "POST", peer_webhooks.WEBHOOK_PATH, body,
                                               {"Content-Type": "application/json", "Stripe-Signature":
                                                peer_webhooks.signature_header(body, "whsec_not_the_secret")},
                                               tag="forged", keep_alive=False)], 1)
            self.results["peer_rss"] = server.peak_rss_mb()
        finally:
            server.stop()
        sent = sum(len(sequence) for sequence in self.sequences.values())
        distinct_count = sum(len(d) for d in distinct.values())
        with self.engine.connect() as connection:
            statuses = dict(connection.execute(sa.text(
                f'SELECT status, count(*) FROM "{PEER_SCHEMA}".peer_payment GROUP BY status')).all())
            fires = connection.scalar(sa.text(f'SELECT count(*) FROM "{PEER_SCHEMA}".peer_signalfire'))
            most = connection.scalar(sa.text(
                f'SELECT max(n) FROM (SELECT count(*) AS n FROM "{PEER_SCHEMA}".peer_signalfire GROUP BY payment_id) f'))
        duplicates = sent - distinct_count
        ok = statuses == {"confirmed": distinct_count}
        check = {"ok": ok, "payments": statuses, "expected_confirmed": distinct_count, "deliveries": sent,
                 "duplicates": duplicates, "signal_fired": fires,
                 "signal_fires_per_duplicate": round((fires - distinct_count) / duplicates, 3) if duplicates else None,
                 "most_fires_for_one_payment": most, "bad_signature_answer": forged[0].status}
        self.results["peer_check"] = check
        log("  peer check: " + ("every payment confirmed" if ok else f"FAILED: payments {statuses}, expected "
                                 f"{distinct_count} confirmed")
            + f"; status signal fired {fires} times for {distinct_count} payments and {duplicates} duplicates "
              f"({check['signal_fires_per_duplicate']} per duplicate, at most {most} for one payment); "
              f"a bad signature answered {forged[0].status}")

    # ------------------------------------------------------------------------------------ 1c. Celery
    def celery_notifications(self) -> None:
        """PSP_TASK_QUEUE = "celery": the shop verifies, stores, queues and acknowledges; Celery
        workers on Redis apply. The same number of deliveries as a concurrency level, at 8, on
        payments of their own; one worker is killed (SIGKILL) once half the deliveries are stored,
        and the sweeper queues again what it held. Then every order must be paid exactly once and
        every delivery applied or recorded as a duplicate: nothing lost."""
        import redis

        from flask_psp.extension import current_state

        from .celery_shop import make

        s = self.s
        redis.Redis.from_url(s.celery_broker).flushdb()  # the bench's own database index
        config = {**shop_config(s.database_url, self.sims, self.key, self.shop.url),
                  "PSP_REQUEUE_AFTER": s.celery_requeue_after}
        app, celery_app, queue = make(config, s.celery_broker)
        server = Gunicorn("bench.celery_shop:app", {"BENCH_SHOP_CONFIG": json.dumps(config),
                                                    "BENCH_CELERY_BROKER": s.celery_broker},
                          s.workers, s.threads, "celery shop")
        logs = [os.path.join(tempfile.gettempdir(), f"bench-celery-worker-{i}.log") for i in range(s.celery_workers)]
        workers = [subprocess.Popen([sys.executable, "-m", "celery", "-A", "bench.celery_shop:celery_app", "worker",
                                     "--pool", "solo", "-n", f"bench-{i}@%h", "--without-gossip", "--without-mingle",
                                     "--loglevel", "warning"], cwd=ROOT, env=server.env, stdout=subprocess.DEVNULL,
                                    stderr=open(logs[i], "w"))
                   for i in range(s.celery_workers)]
        try:
            server.start("/products.json")
            deadline = time.monotonic() + 60
            while len(celery_app.control.ping(timeout=0.5)) < len(workers):
                if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                    raise RuntimeError("the Celery workers did not come up")
            order_of = {id(self.found[ref]): ref for part in self.celery_orders.values() for refs in part.values()
                        for ref in refs}
            for part in ("warm-up", "run"):
                distinct = [self.found[ref] for p in PROVIDERS for ref in self.celery_orders[part][p]]
                sequence = self.with_duplicates(distinct)
                requests = [flows.notification_request(n, server.port, order_of[id(n)]) for n in sequence]
                if part == "warm-up":
                    warm, _ = self.load.run(requests, 8)
                    if any(not 200 <= x.status < 300 for x in warm):
                        raise RuntimeError("celery shop: the warm-up was refused")
            with self.engine.connect() as connection:
                # the warm-up applied first (the workers' backlog is theirs, not the run's)
                deadline = time.monotonic() + 120
                while connection.scalar(sa.text("SELECT count(*) FROM psp_payment_event WHERE outcome = 'queued'")):
                    connection.rollback()
                    if time.monotonic() > deadline:
                        raise RuntimeError("celery: the warm-up was not applied in 2 minutes")
                    time.sleep(0.05)  # polling the inbox: nothing to wait on but the database
                before = connection.scalar(sa.text("SELECT coalesce(max(id), 0) FROM psp_payment_event"))
            sent = {}

            def send():
                sent["samples"], sent["wall"] = self.load.run(requests, 8)

            wall_offset = time.time() - time.monotonic()  # CLOCK_MONOTONIC is the machine's, as the samples'
            sender = threading.Thread(target=send, name="bench-celery-load")
            with cpu_used(server) as ack_cpu:
                sender.start()
                killed_after = None
                with self.engine.connect() as connection:
                    while sender.is_alive() and killed_after is None:
                        stored = connection.scalar(sa.text("SELECT count(*) FROM psp_payment_event WHERE id > :b"),
                                                   {"b": before})
                        connection.rollback()
                        if stored >= len(requests) // 2:
                            workers[0].kill()
                            killed_after = stored
                        else:
                            time.sleep(0.01)  # polling the inbox: nothing to wait on but the database
                sender.join()
            if killed_after is None:
                workers[0].kill()
            workers[0].wait()
            samples, wall = sent["samples"], sent["wall"]
            bad = [x for x in samples if not 200 <= x.status < 300]
            if bad:
                raise RuntimeError(f"celery shop: {len(bad)} notifications answered {bad[0].status} {bad[0].error or ''}")
            ack = summary(samples, wall)
            ack.update(ack_cpu.per_request(len(samples)))
            # what the killed worker held waits for the sweeper: run it (as beat would) until nothing is queued
            swept, waited_from = 0, time.monotonic()
            deadline = waited_from + max(120, 20 * s.celery_requeue_after)
            while True:
                with self.engine.connect() as connection:
                    queued = connection.scalar(sa.text(
                        "SELECT count(*) FROM psp_payment_event WHERE id > :b AND outcome = 'queued'"), {"b": before})
                if not queued or time.monotonic() > deadline:
                    break
                with app.app_context():
                    (report,) = current_state().run_jobs(["sweep"], enqueue=queue.enqueue)
                    swept += report.claimed
                time.sleep(0.2)  # the sweeper's own pace: rows become due PSP_REQUEUE_AFTER after they were stored
            drained = time.monotonic() - waited_from
            survivor_rss = _peak_rss_mb(workers[1].pid) if len(workers) > 1 else None
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.terminate()
            for worker in workers:
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
            server.stop()
            with app.app_context():
                from example_shop import db

                db.engine.dispose()
        first = {}
        for x in samples:
            first[x.tag] = min(first.get(x.tag, x.started), x.started)
        refs = list(first)
        with self.engine.connect() as connection:
            marked = dict(connection.execute(sa.text(
                "SELECT order_ref, max(order_marked_at) FROM psp_payment WHERE order_ref = ANY(:refs) "
                "AND order_marked_at IS NOT NULL GROUP BY order_ref"), {"refs": refs}).all())
            not_once = connection.scalar(sa.text(
                "SELECT count(*) FROM (SELECT order_ref FROM psp_payment WHERE order_ref = ANY(:refs) "
                "GROUP BY order_ref HAVING count(order_marked_at) <> 1) AS wrong"), {"refs": refs})
            unpaid = connection.scalar(sa.text(
                "SELECT count(*) FROM shop_order WHERE reference = ANY(:refs) AND status <> 'paid'"), {"refs": refs})
            inbox = dict(connection.execute(sa.text(
                "SELECT outcome, count(*) FROM psp_payment_event WHERE id > :b AND source = 'notify' "
                "AND parent_id IS NULL GROUP BY outcome"), {"b": before}).all())
        delays = [(marked[ref].replace(tzinfo=timezone.utc).timestamp() - (first[ref] + wall_offset)) * 1000
                  for ref in refs if ref in marked]
        expected = {"applied": len(distinct), "duplicate": len(sequence) - len(distinct)}
        ok = inbox == {k: v for k, v in expected.items() if v} and not unpaid and not not_once
        levels = self.results.get("notifications") or {}
        inline_level = "8" if "8" in levels else (list(levels)[-1] if levels else None)
        inline = levels[inline_level]["plugin"] if inline_level else None
        self.results["celery"] = {
            "workers": len(workers), "broker": s.celery_broker, "requeue_after_s": s.celery_requeue_after,
            "concurrency": 8, "ack": ack,
            "applied_p50_ms": round(percentile(delays, 50), 1), "applied_p99_ms": round(percentile(delays, 99), 1),
            "applied_max_ms": round(max(delays), 1) if delays else None,
            "inline": {"level": inline_level, "throughput_rps": inline and inline["throughput_rps"],
                       "applied_p50_ms": inline and inline["p50_ms"], "applied_p99_ms": inline and inline["p99_ms"]},
            "ack_to_inline_ratio": _ratio(ack["throughput_rps"], inline and inline["throughput_rps"]),
            "killed_worker_after_stored": killed_after, "swept": swept, "drained_s": round(drained, 1),
            "surviving_worker_rss_mb": survivor_rss,
            "check": {"ok": ok, "inbox": inbox, "expected": expected, "unpaid": unpaid, "not_marked_once": not_once},
        }
        c = self.results["celery"]
        log(f"  celery   c= 8: acknowledged {ack['throughput_rps']:7.1f}/s p50 {ack['p50_ms']:6.1f} p99 "
            f"{ack['p99_ms']:6.1f} ms | applied after p50 {c['applied_p50_ms']} p99 {c['applied_p99_ms']} ms | "
            f"inline (c={inline_level}) {c['inline']['throughput_rps']}/s, applied when answered: p50 "
            f"{c['inline']['applied_p50_ms']} p99 {c['inline']['applied_p99_ms']} ms | ack/inline {c['ack_to_inline_ratio']}")
        log(f"           worker 1 of {len(workers)} killed once {killed_after} deliveries were stored; the sweeper "
            f"queued {swept} rows again; all applied {drained:.1f} s after the last answer")
        log("  celery check: " + ("every order paid exactly once, every duplicate recorded as one, nothing queued"
                                  if ok else f"FAILED: inbox {inbox}, expected {expected}, {unpaid} orders unpaid, "
                                             f"{not_once} not handed to mark_paid exactly once (workers' logs: "
                                             f"{', '.join(logs)})"))

    def with_duplicates(self, distinct: list[dict]) -> list[dict]:
        """``distinct`` shuffled, with ``duplicate_share`` of the deliveries copies of one of them,
        each somewhere after its original (which may still be in flight)."""
        self.random.shuffle(distinct)
        share = self.s.duplicate_share
        duplicates = round(len(distinct) * share / (1 - share)) if share < 1 else 0
        order = list(range(len(distinct)))
        for _ in range(duplicates):
            original = self.random.randrange(len(distinct))
            order.insert(self.random.randint(order.index(original) + 1, len(order)), original)
        return [distinct[i] for i in order]

    def floor_check(self, sequences: dict) -> None:
        """The floor, which took the same deliveries on the same payments put back to pending (slice by
        slice, after the plugin's), checked the same way: every order paid, every copy a duplicate,
        every applied delivery in the journal."""
        applied = sum(len({id(n) for n in sequence}) for sequence in sequences.values())
        duplicates = sum(len(sequence) for sequence in sequences.values()) - applied
        with self.engine.connect() as connection:
            kept = dict(connection.execute(sa.text(
                "SELECT outcome, count(*) FROM psp_payment_event WHERE source = 'floor' GROUP BY outcome")).all())
            unpaid = connection.scalar(sa.text(
                "SELECT count(*) FROM shop_order WHERE reference LIKE 'BENCH-%' AND status <> 'paid'"))
            journal = connection.scalar(sa.text(
                "SELECT count(*) FROM psp_movements m JOIN psp_payment_event e ON e.id = m.event_id "
                "WHERE e.source = 'floor'"))
        ok = kept == {"applied": applied, "duplicate": duplicates} and not unpaid and journal == applied
        self.results["floor_check"] = {"ok": ok, "inbox": kept, "expected": {"applied": applied, "duplicate": duplicates}}
        log("  floor check: " + ("every order paid, every duplicate recorded as one" if ok else
                                 f"FAILED: inbox {kept}, expected {applied} applied and {duplicates} duplicates, "
                                 f"{unpaid} orders unpaid"))

    def check(self) -> dict:
        """Every order paid exactly once; every distinct notification applied once, every copy a duplicate."""
        # each slice's orders were checked before the floor took their payments again
        unpaid, marked_not_once = self.plugin_orders["unpaid"], self.plugin_orders["marked_not_once"]
        with self.engine.connect() as connection:
            outcomes = connection.execute(sa.text(
                "SELECT provider, outcome, count(*) FROM psp_payment_event WHERE source = 'notify' "
                "AND parent_id IS NULL GROUP BY provider, outcome")).all()
            baseline_unpaid = connection.scalar(sa.text(
                "SELECT count(*) FROM bench_baseline_order WHERE status <> 'paid'"))
            captures_not_once = connection.scalar(sa.text(
                "SELECT count(*) FROM psp_payment p WHERE p.order_ref LIKE 'BENCH-%' AND p.order_marked_at IS NOT NULL"
                " AND (SELECT count(*) FROM psp_movements m JOIN psp_payment_event e ON e.id = m.event_id"
                "      WHERE m.payment_id = p.id AND m.kind = 'capture' AND e.source = 'notify') <> 1"))
        inbox = {p: {} for p in PROVIDERS}
        for provider, outcome, count in outcomes:
            inbox[provider][outcome] = count
        problems = []
        if unpaid:
            problems.append(f"{unpaid} orders not paid")
        if marked_not_once:
            problems.append(f"{marked_not_once} orders not handed to mark_paid exactly once")
        for provider in PROVIDERS:
            if inbox[provider] != {k: v for k, v in self.expected[provider].items() if v}:
                problems.append(f"{provider}: inbox {inbox[provider]}, expected {self.expected[provider]}")
        if captures_not_once:
            problems.append(f"{captures_not_once} paid payments without exactly one capture in the journal")
        if baseline_unpaid:
            problems.append(f"baseline: {baseline_unpaid} rows not paid")
        check = {"ok": not problems, "problems": problems, "inbox": inbox, "expected": self.expected}
        log("  check: " + ("every order paid exactly once, every duplicate recorded as one"
                           if not problems else "FAILED: " + "; ".join(problems)))
        return check

    # ------------------------------------------------------------------------------------ 3. admin list
    def admin_list(self) -> None:
        client = admin.AdminClient(self.shop.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        shapes = admin.query_shapes(self.s.admin_rows or 1000)
        for name, args in list(shapes):
            if name in ("no filter", "status", "date range (a week)"):
                following = client.next_before(args)  # the second page, as the list's "next" link asks for it
                if following:
                    shapes.append((f"{name}, next page", {**args, "before": str(following)}))
        raw = psycopg.connect(sa.engine.make_url(self.s.database_url).set(drivername="postgresql")
                              .render_as_string(hide_password=False))
        results = {}
        repeat = self.s.admin_repeat
        for name, args in shapes:
            samples, _ = self.load.run([client.request(self.shop.port, args, name) for _ in range(repeat)], 1)
            if any(x.status != 200 for x in samples):
                raise RuntimeError(f"admin list {name}: HTTP {samples[0].status}")
            view = [x.latency * 1000 for x in samples]
            statement, parameters = admin.captured_sql(self.app, args)
            sql = admin.time_sql(raw, statement, parameters, repeat)
            a = {"p50_ms": round(percentile(view, 50), 2), "p95_ms": round(percentile(view, 95), 2)}
            b = {"p50_ms": round(percentile(sql, 50), 2), "p95_ms": round(percentile(sql, 95), 2)}
            results[name] = {"args": args, "plugin": a, "baseline": b, "ratio": _ratio(a["p95_ms"], b["p95_ms"]),
                             "sql": statement, "parameters": {k: str(v) for k, v in (parameters or {}).items()}}
            if a["p95_ms"] >= 100 or b["p95_ms"] >= 50:
                results[name]["plan"] = admin.explain(raw, statement, parameters)
            log(f"  admin {name:<36} view p50 {a['p50_ms']:7.1f} p95 {a['p95_ms']:7.1f} ms | its SQL alone "
                f"p50 {b['p50_ms']:7.1f} p95 {b['p95_ms']:7.1f} ms")
        raw.close()
        self.results["admin"] = results
        self.record_rss("admin")

    def admin_overview(self) -> None:
        client = admin.AdminClient(self.shop.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        results = {}
        for name, args in admin.overview_shapes():
            requests_ = [admin.overview_request(client, self.shop.port, args, name) for _ in range(self.s.admin_repeat)]
            samples, _ = self.load.run(requests_, 1)
            if any(x.status != 200 for x in samples):
                raise RuntimeError(f"{name}: HTTP {samples[0].status}")
            view = [x.latency * 1000 for x in samples]
            results[name] = {"args": args, "p50_ms": round(percentile(view, 50), 2),
                             "p95_ms": round(percentile(view, 95), 2)}
            log(f"  {name:<36} p50 {results[name]['p50_ms']:7.1f} p95 {results[name]['p95_ms']:7.1f} ms")
        self.results["overview"] = results
        self.record_rss("overview")

    # ------------------------------------------------------------------------------------ summary
    def targets(self) -> None:
        r = self.results
        r["targets"] = []
        log("\ntargets")
        compare = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}
        for label, read, op, goal in targets_for([str(c) for c in self.s.concurrency]):
            value = read(r)
            met = None if value is None else compare[op](value, goal)
            r["targets"].append({"target": label, "value": value, "met": met})
            log(f"  {'MET ' if met else 'MISS' if met is False else 'n/a '} {label}: {value}")

    def write(self) -> None:
        self.results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        with open(self.s.output, "w") as handle:
            json.dump(self.results, handle, indent=2, default=str)
        log(f"\nwritten to {os.path.relpath(self.s.output, ROOT)}")

    def close(self) -> None:
        for name in ("load", "shop", "baseline", "floor"):
            part = getattr(self, name, None)
            if part is not None:
                part.close() if name == "load" else part.stop()
        if getattr(self, "sims", None) is not None:
            self.sims.close()


class cpu_used(contextlib.AbstractContextManager):
    """CPU seconds spent while the block runs: by the server's workers (none: 0), by PostgreSQL and
    by the whole machine (the load generator and the simulators included)."""

    def __init__(self, server):
        self.server = server

    def _now(self) -> tuple:
        return (self.server.cpu_seconds() if self.server else 0.0), postgres_cpu_seconds(), machine_cpu_seconds()

    def __enter__(self):
        self.start = self._now()
        return self

    def __exit__(self, *exc):
        self.used = [after - before for after, before in zip(self._now(), self.start)]
        return None

    def per_request(self, requests: int) -> dict:
        return cpu_per_request(self.used, requests)


def cpu_per_request(used: list[float], requests: int) -> dict:
    """CPU seconds used (workers, PostgreSQL, whole machine) as milliseconds per request."""
    workers, postgres, machine = (round(seconds * 1000 / requests, 2) for seconds in used)
    return {"worker_cpu_ms_per_request": workers, "postgres_cpu_ms_per_request": postgres,
            "machine_cpu_ms_per_request": machine}


class Tally:
    """One app's part of a comparison run in slices (:meth:`Bench.taking_turns`): its samples, wall
    time and CPU, summed over its slices."""

    def __init__(self):
        self.samples: list = []
        self.wall = 0.0
        self.used = [0.0, 0.0, 0.0]

    def add(self, samples: list, wall: float, cpu: cpu_used) -> None:
        self.samples += samples
        self.wall += wall
        self.used = [total + more for total, more in zip(self.used, cpu.used)]

    def summary(self) -> dict:
        return {**summary(self.samples, self.wall), **cpu_per_request(self.used, len(self.samples))}


def _peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _ratio(a, b):
    return round(a / b, 3) if a and b else None


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill stops gunicorn too (the finally below)
    settings = Settings()
    bench = Bench(settings)
    began = time.monotonic()
    phases = bench.results["phase_seconds"] = {}

    def phase(name: str, run) -> None:
        started = time.monotonic()
        run()
        phases[name] = round(time.monotonic() - started, 1)

    try:
        phase("setup", bench.setup)
        log("\n2. checkout start (POST /psp/checkout/<ref> → 303) vs the checkout floor and the provider call alone")
        phase("checkout", bench.checkouts)
        log("\n1. notifications (5 providers, signed; PayPlug re-fetched, PayPal verified) vs baseline app")
        phase("notifications", bench.notifications)
        log("\n1b. the peer: django-payments 4.1, Stripe V3 provider, signed checkout.session.completed webhooks")
        phase("peer", bench.peer_notifications)
        if settings.celery:
            log(f"\n1c. PSP_TASK_QUEUE = \"celery\": {settings.celery_workers} workers on {settings.celery_broker}, "
                "one killed mid-run, vs inline")
            phase("celery", bench.celery_notifications)
        log("\n1d. choosing a provider's credentials, per notification: PSP_PROVIDERS vs the admin panel's rows")
        phase("provider settings", lambda: bench.results.__setitem__(
            "provider_settings", provider_rows.measure(settings.database_url, log=log)))
        if settings.admin_rows:
            log(f"\n3. admin payments list, {settings.admin_rows:,} payments: the view vs its SQL alone")
            phase("admin", bench.admin_list)
            log(f"\n3b. admin overview, {settings.admin_rows:,} payments")
            phase("overview", bench.admin_overview)
        if settings.export_movements:
            log(f"\n5. accounting export (flask psp accounting export), {settings.export_movements:,} movements")
            phase("export", lambda: bench.results.__setitem__("export", export.bench_export(
                settings.database_url, settings.export_movements, log, fresh=False)))
        log("\n4. peak RSS of a gunicorn worker (VmHWM), MB")
        for after, values in bench.results["rss"].items():
            log(f"  after {after:<14} plugin {values['plugin']['max_mb']}  baseline {values['baseline']['max_mb']}  "
                f"floor {values['floor']['max_mb']}")
        if "peer_rss" in bench.results:
            log(f"  the peer (django-payments) after its notifications: {bench.results['peer_rss']['max_mb']}")
        bench.targets()
        bench.results["seconds"] = round(time.monotonic() - began, 1)
        log("\nseconds per part: " + ", ".join(f"{name} {seconds}" for name, seconds in phases.items()))
        bench.write()
        ok = all(bench.results.get(check, {}).get("ok", False) for check in ("notifications_check", "floor_check",
                                                                            "peer_check"))
        ok = ok and (not settings.celery or bench.results["celery"]["check"]["ok"])
    finally:
        bench.close()
    log(f"done in {time.monotonic() - began:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
