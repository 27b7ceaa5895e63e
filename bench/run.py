"""``make bench``: flask-psp against minimal baselines, measured in the same run.

1. notifications: signed notifications of the five providers (PayPlug re-fetched, PayPal verified
   through the simulator), 20 % duplicates, over real HTTP to gunicorn; baseline: bench/baseline_app.py.
2. checkout start: ``POST /psp/checkout/<ref>`` → 303, against the provider call made directly.
3. the admin payments list with BENCH_ADMIN_ROWS payments: the view against its own SQL run bare.
4. the peak RSS of the gunicorn workers after each benchmark.
5. the accounting export (bench/export.py): FEC and CSV of BENCH_EXPORT_MOVEMENTS live movements,
   each in a fresh process — time, and peak RSS at a tenth and at all of them (streamed: the same).

Sizes and settings come from the environment (see ``Settings``); figures are printed and written to
bench/results.json (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

import psycopg
import sqlalchemy as sa
from cryptography.fernet import Fernet

from . import admin, export, flows
from .load import LoadGenerator, percentile, summary
from .servers import (PROVIDERS, ROOT, Simulators, baseline_server, floor_server, machine_cpu_seconds,
                      postgres_cpu_seconds, prepare_database, shop_config, shop_server)

REDIRECTING = ("adyen", "paypal", "payplug", "hipay")  # checkout answers 303 (Sips: an auto-submitting form)
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
    #: live movements the accounting export (FEC, CSV) is timed on (0: skipped)
    export_movements: int = field(default_factory=lambda: _env_int("BENCH_EXPORT_MOVEMENTS", 1_000_000))
    output: str = field(default_factory=lambda: os.environ.get("BENCH_OUTPUT")
                        or os.path.join(ROOT, "bench", "results.json"))
    seed: int = field(default_factory=lambda: _env_int("BENCH_SEED", 6))
    #: a folder: py-spy samples the shop's workers during the plugin's runs at concurrency 8
    profile: str = field(default_factory=lambda: os.environ.get("BENCH_PROFILE") or "")


TARGETS = {
    "notification throughput ≥ 0.8 × baseline at concurrency 8": ("notify_ratio_c8", ">=", 0.8),
    "notification p99 < 50 ms at concurrency 8": ("notify_p99_c8", "<", 50.0),
    "admin list p95 < 100 ms (every query shape)": ("admin_p95_max", "<", 100.0),
    "worker peak RSS < 150 MB": ("rss_max", "<", 150.0),
    "FEC export of the movements < 30 s": ("export_fec_seconds", "<", 30.0),
    "FEC export's peak RSS grows < 20 MB from a tenth to all of the movements": ("export_rss_growth", "<", 20.0),
}


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
        self.floor = floor_server(s.database_url, self.sims, s.workers, s.threads)
        self.shop.start("/products.json")
        self.baseline.start("/")
        self.floor.start("/")
        log(f"gunicorn: shop {self.shop.url}, baseline {self.baseline.url}, floor {self.floor.url} — "
            f"{s.workers} workers × {s.threads} threads")
        self.load = LoadGenerator(s.client_processes)
        self.orders = {level: {p: [f"BENCH-{level.upper()}-{p.upper()}-{i:05d}" for i in range(self.per_provider[level])]
                               for p in PROVIDERS} for level in self.levels}
        flows.insert_orders(self.engine, [r for level in self.orders.values() for refs in level.values() for r in refs])
        self.cookie, self.csrf = flows.buyer_session(self.shop.url, self.orders["warm-up"]["adyen"][0])
        self.direct = flows.DirectCalls(self.sims, self.shop.url)

    @contextlib.contextmanager
    def profiled(self, name: str, level: str):
        """py-spy (collapsed stacks, one line per stack: ``frames count``) over the shop's workers."""
        if not self.s.profile or level != "8":
            yield
            return
        os.makedirs(self.s.profile, exist_ok=True)
        path = os.path.join(self.s.profile, f"{name}-c{level}.txt")
        spy = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "--format", "raw",
                                "--rate", "250", "--subprocesses", "--gil", "--nonblocking", "--pid", str(self.shop.process.pid),
                                "--output", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
            log(f"  profile: {os.path.relpath(path, ROOT)}")

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
            with self.profiled("checkout", level):
                plugin, plugin_wall = self.load.run(plugin_requests, concurrency)
            direct, direct_wall = self.load.run(direct_requests, concurrency)
            bad = [s for s in plugin if s.status != 303]
            if bad:
                raise RuntimeError(f"checkout answered {bad[0].status} ({bad[0].error or ''}) for {bad[0].tag}")
            if any(not 200 <= s.status < 300 for s in direct):
                raise RuntimeError("a direct provider call failed")
            started += [(s.tag.split("|")[0], s.location, None) for s in plugin]
            if level == "warm-up":
                continue
            a, b = summary(plugin, plugin_wall), summary(direct, direct_wall)
            results[level] = {"plugin": a, "baseline": b, "ratio": _ratio(a["throughput_rps"], b["throughput_rps"])}
            log(f"  checkout c={level:>2}: plugin {a['throughput_rps']:7.1f}/s p50 {a['p50_ms']:6.1f} p99 "
                f"{a['p99_ms']:6.1f} ms | direct call {b['throughput_rps']:7.1f}/s p50 {b['p50_ms']:6.1f} p99 "
                f"{b['p99_ms']:6.1f} ms | ratio {results[level]['ratio']}")
        # Sips: the checkout renders an auto-submitting form, no provider call: made for the notifications only
        sips = [flows.checkout_request(self.shop, ref, "sips", self.cookie, self.csrf)
                for level in self.levels for ref in self.orders[level]["sips"]]
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
        missing = [ref for level in self.orders.values() for refs in level.values() for ref in refs if ref not in found]
        if missing:
            raise RuntimeError(f"{len(missing)} payments made no notification (e.g. {missing[0]})")
        with self.engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO bench_baseline_order (reference) VALUES (:r)"),
                               [{"r": n["baseline_ref"]} for n in found.values()])
        results = {}
        self.expected = {p: {"applied": 0, "duplicate": 0} for p in PROVIDERS}
        sequences = {}
        for level in self.levels:
            concurrency = 8 if level == "warm-up" else int(level)
            distinct = [found[ref] for p in PROVIDERS for ref in self.orders[level][p]]
            self.random.shuffle(distinct)
            share = self.s.duplicate_share
            duplicates = round(len(distinct) * share / (1 - share)) if share < 1 else 0
            order = list(range(len(distinct)))
            for _ in range(duplicates):
                # a copy of a notification, somewhere after the original (which may still be in flight)
                original = self.random.randrange(len(distinct))
                order.insert(self.random.randint(order.index(original) + 1, len(order)), original)
                self.expected[distinct[original]["provider"]]["duplicate"] += 1
            for n in distinct:
                self.expected[n["provider"]]["applied"] += 1
            sequence = sequences[level] = [distinct[i] for i in order]
            plugin_requests = [flows.notification_request(n, self.shop.port, n["provider"]) for n in sequence]
            baseline_requests = [flows.notification_request(n, self.baseline.port, n["provider"]) for n in sequence]
            with self.profiled("notify", level), cpu_used(self.shop) as plugin_cpu:
                plugin, plugin_wall = self.load.run(plugin_requests, concurrency)
            with cpu_used(self.baseline) as baseline_cpu:
                baseline, baseline_wall = self.load.run(baseline_requests, concurrency)
            for name, samples in (("plugin", plugin), ("baseline", baseline)):
                bad = [x for x in samples if not 200 <= x.status < 300]
                if bad:
                    raise RuntimeError(f"{name}: {len(bad)} notifications answered {bad[0].status} {bad[0].error or ''}")
            if level == "warm-up":
                continue
            a, b = summary(plugin, plugin_wall), summary(baseline, baseline_wall)
            a.update(plugin_cpu.per_request(len(plugin)))
            b.update(baseline_cpu.per_request(len(baseline)))
            by_provider = {p: {"p50_ms": round(percentile([x.latency * 1000 for x in plugin if x.tag == p], 50), 2),
                               "p99_ms": round(percentile([x.latency * 1000 for x in plugin if x.tag == p], 99), 2),
                               "baseline_p50_ms": round(percentile([x.latency * 1000 for x in baseline if x.tag == p], 50), 2)}
                           for p in PROVIDERS}
            results[level] = {"plugin": a, "baseline": b, "ratio": _ratio(a["throughput_rps"], b["throughput_rps"]),
                              "duplicates": duplicates, "plugin_by_provider": by_provider}
            log(f"  notify   c={level:>2}: plugin {a['throughput_rps']:7.1f}/s p50 {a['p50_ms']:6.1f} p99 "
                f"{a['p99_ms']:6.1f} ms | baseline {b['throughput_rps']:7.1f}/s p50 {b['p50_ms']:6.1f} p99 "
                f"{b['p99_ms']:6.1f} ms | ratio {results[level]['ratio']}  ({len(sequence)} requests, "
                f"{duplicates} duplicates)")
            log(f"           CPU ms per request, plugin | baseline: workers {a['worker_cpu_ms_per_request']} | "
                f"{b['worker_cpu_ms_per_request']}, PostgreSQL {a['postgres_cpu_ms_per_request']} | "
                f"{b['postgres_cpu_ms_per_request']}, whole machine {a['machine_cpu_ms_per_request']} | "
                f"{b['machine_cpu_ms_per_request']}")
        self.results["notifications"] = results
        self.record_rss("notifications")
        self.results["notifications_check"] = self.check()
        self.floor_notifications(sequences, results)

    def floor_notifications(self, sequences: dict, results: dict) -> None:
        """The same deliveries to bench/floor_app.py, on the same payments put back to pending: what
        the contract's storage and locking cost by hand, against which the plugin is read too."""
        applied = duplicates = 0
        for level, sequence in sequences.items():
            refs = [ref for refs in self.orders[level].values() for ref in refs]
            with self.engine.begin() as connection:
                connection.execute(sa.text(
                    "UPDATE psp_payment SET status = 'pending', captured_amount = 0, authorized_amount = 0, "
                    "paid_at = NULL, order_marked_at = NULL WHERE order_ref = ANY(:refs)"), {"refs": refs})
                connection.execute(sa.text("UPDATE shop_order SET status = 'pending' WHERE reference = ANY(:refs)"),
                                   {"refs": refs})
            requests = [flows.notification_request(n, self.floor.port, n["provider"]) for n in sequence]
            with cpu_used(self.floor) as floor_cpu:
                samples, wall = self.load.run(requests, 8 if level == "warm-up" else int(level))
            bad = [x for x in samples if not 200 <= x.status < 300]
            if bad:
                raise RuntimeError(f"floor: {len(bad)} notifications answered {bad[0].status} {bad[0].error or ''}")
            distinct = len({id(n) for n in sequence})
            applied, duplicates = applied + distinct, duplicates + len(sequence) - distinct
            if level == "warm-up":
                continue
            f = summary(samples, wall)
            f.update(floor_cpu.per_request(len(samples)))
            entry = results[level]
            entry["floor"] = f
            entry["floor_ratio"] = _ratio(f["throughput_rps"], entry["baseline"]["throughput_rps"])
            entry["plugin_to_floor_ratio"] = _ratio(entry["plugin"]["throughput_rps"], f["throughput_rps"])
            log(f"  floor    c={level:>2}: {f['throughput_rps']:7.1f}/s p50 {f['p50_ms']:6.1f} p99 {f['p99_ms']:6.1f} ms"
                f" | floor/baseline {entry['floor_ratio']}, plugin/floor {entry['plugin_to_floor_ratio']}"
                f" | CPU ms per request: workers {f['worker_cpu_ms_per_request']}, PostgreSQL "
                f"{f['postgres_cpu_ms_per_request']}, whole machine {f['machine_cpu_ms_per_request']}")
        with self.engine.connect() as connection:
            kept = dict(connection.execute(sa.text(
                "SELECT outcome, count(*) FROM psp_payment_event WHERE source = 'floor' GROUP BY outcome")).all())
            unpaid = connection.scalar(sa.text(
                "SELECT count(*) FROM shop_order WHERE reference LIKE 'BENCH-%' AND status <> 'paid'"))
        ok = kept == {"applied": applied, "duplicate": duplicates} and not unpaid
        self.results["floor_check"] = {"ok": ok, "inbox": kept, "expected": {"applied": applied, "duplicate": duplicates}}
        log("  floor check: " + ("every order paid, every duplicate recorded as one" if ok else
                                 f"FAILED: inbox {kept}, expected {applied} applied and {duplicates} duplicates, "
                                 f"{unpaid} orders unpaid"))

    def check(self) -> dict:
        """Every order paid exactly once; every distinct notification applied once, every copy a duplicate."""
        with self.engine.connect() as connection:
            unpaid = connection.scalar(sa.text(
                "SELECT count(*) FROM shop_order WHERE reference LIKE 'BENCH-%' AND status <> 'paid'"))
            marked_not_once = connection.scalar(sa.text(
                "SELECT count(*) FROM (SELECT order_ref FROM psp_payment WHERE order_ref LIKE 'BENCH-%' "
                "GROUP BY order_ref HAVING count(order_marked_at) <> 1) AS wrong"))
            outcomes = connection.execute(sa.text(
                "SELECT provider, outcome, count(*) FROM psp_payment_event WHERE source = 'notify' "
                "AND parent_id IS NULL GROUP BY provider, outcome")).all()
            baseline_unpaid = connection.scalar(sa.text(
                "SELECT count(*) FROM bench_baseline_order WHERE status <> 'paid'"))
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

    # ------------------------------------------------------------------------------------ summary
    def targets(self) -> None:
        r = self.results
        rss = [v["plugin"]["max_mb"] for v in r["rss"].values() if v["plugin"]["max_mb"]]
        values = {
            "notify_ratio_c8": (r.get("notifications") or {}).get("8", {}).get("ratio"),
            "notify_p99_c8": (r.get("notifications") or {}).get("8", {}).get("plugin", {}).get("p99_ms"),
            "admin_p95_max": max((v["plugin"]["p95_ms"] for v in (r.get("admin") or {}).values()), default=None),
            "rss_max": max(rss) if rss else None,
            "export_fec_seconds": (r.get("export") or {}).get("fec all", {}).get("seconds"),
            "export_rss_growth": (r.get("export") or {}).get("peak_rss_growth_mb"),
        }
        r["targets"] = []
        log("\ntargets")
        for label, (key, op, goal) in TARGETS.items():
            value = values[key]
            met = None if value is None else (value >= goal if op == ">=" else value < goal)
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
    """CPU seconds spent while the block runs: by the server's workers, by PostgreSQL and by the
    whole machine (the load generator and the simulators included)."""

    def __init__(self, server):
        self.server = server

    def __enter__(self):
        self.start = (self.server.cpu_seconds(), postgres_cpu_seconds(), machine_cpu_seconds())
        return self

    def __exit__(self, *exc):
        self.used = [after - before for after, before in
                     zip((self.server.cpu_seconds(), postgres_cpu_seconds(), machine_cpu_seconds()), self.start)]
        return None

    def per_request(self, requests: int) -> dict:
        workers, postgres, machine = (round(seconds * 1000 / requests, 2) for seconds in self.used)
        return {"worker_cpu_ms_per_request": workers, "postgres_cpu_ms_per_request": postgres,
                "machine_cpu_ms_per_request": machine}


def _ratio(a, b):
    return round(a / b, 3) if a and b else None


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill stops gunicorn too (the finally below)
    settings = Settings()
    bench = Bench(settings)
    began = time.monotonic()
    try:
        bench.setup()
        log("\n2. checkout start (POST /psp/checkout/<ref> → 303) vs the provider call made directly")
        bench.checkouts()
        log("\n1. notifications (5 providers, signed; PayPlug re-fetched, PayPal verified) vs baseline app")
        bench.notifications()
        if settings.admin_rows:
            log(f"\n3. admin payments list, {settings.admin_rows:,} payments: the view vs its SQL alone")
            bench.admin_list()
        if settings.export_movements:
            log(f"\n5. accounting export (flask psp accounting export), {settings.export_movements:,} movements")
            bench.results["export"] = export.bench_export(settings.database_url, settings.export_movements, log,
                                                          fresh=False)
        log("\n4. peak RSS of a gunicorn worker (VmHWM), MB")
        for after, values in bench.results["rss"].items():
            log(f"  after {after:<14} plugin {values['plugin']['max_mb']}  baseline {values['baseline']['max_mb']}  "
                f"floor {values['floor']['max_mb']}")
        bench.targets()
        bench.results["seconds"] = round(time.monotonic() - began, 1)
        bench.write()
        ok = all(bench.results.get(check, {}).get("ok", False) for check in ("notifications_check", "floor_check"))
    finally:
        bench.close()
    log(f"done in {time.monotonic() - began:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
