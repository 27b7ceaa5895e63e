"""What the benchmarks run: the five PSP simulators (in this process), gunicorn (the example shop
with flask-psp, and the baseline app) and the database."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from flask_psp.simulator import Notifier, create_simulator
from flask_psp.simulator.adyen import DEFAULT_HMAC_KEY, DEFAULT_MERCHANT, DEFAULT_TEST_KEY
from flask_psp.simulator.paypal import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_WEBHOOK_ID
from flask_psp.simulator.sips import SIMULATION_MERCHANT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROVIDERS = ("adyen", "paypal", "payplug", "sips", "hipay")


def free_port() -> int:
    """gunicorn cannot listen on port 0: take a free port from the kernel, then let it go."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)  # polling the port: nothing to wait on but the kernel
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


# ---------------------------------------------------------------------------------------------- CPU
def _process_cpu_ticks(pid: int | str) -> tuple[str, int] | None:
    """(command name, user + system clock ticks) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    # the command may hold spaces and parentheses: the fields after the last ')' are fixed
    fields = stat[stat.rindex(")") + 2:].split()
    return stat[stat.index("(") + 1:stat.rindex(")")], int(fields[11]) + int(fields[12])


def postgres_cpu_seconds() -> float:
    """User + system CPU time used so far by the PostgreSQL server's processes on this machine
    (a backend that exits between two readings takes its share with it: the pools keep theirs)."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _process_cpu_ticks(entry)
            if found is not None and found[0] == "postgres":
                total += found[1]
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine so far (every core; idle and iowait left out)."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------- database
def prepare_database(url: str) -> None:
    """Create the database when missing, then empty it (the benchmarks own it)."""
    parsed = make_url(url)
    server = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        exists = connection.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database})
        if not exists:
            connection.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    server.dispose()
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


# ---------------------------------------------------------------------------------------------- simulators
#: the test credentials the simulators accept, by provider (their endpoints aside)
SIMULATOR_CREDENTIALS = {
    "adyen": {"api_key": DEFAULT_TEST_KEY, "merchant_account": DEFAULT_MERCHANT, "hmac_key": DEFAULT_HMAC_KEY},
    "paypal": {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET,
               "webhook_id": DEFAULT_WEBHOOK_ID},
    "payplug": {"secret_key": "sk_test_simulator"},
    "sips": {"merchant_id": SIMULATION_MERCHANT, "secret_key": "002001000000001_KEY1", "key_version": "1",
             "seal_algorithm": "HMAC-SHA-256"},
    "hipay": {"api_username": "hipay_sim_api_user", "api_password": "hipay_sim_api_password",
              "secret_passphrase": "hipay-sim-passphrase", "hash_algorithm": "sha256"},
}


class Simulators:
    """The five simulators on loopback, sharing one paused notifier: every notification they make is
    kept (URL, body, signed headers) and replayed by the benchmark instead of being sent."""

    def __init__(self):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per simulator request
        self.notifier = Notifier(retry_delays=())
        self.notifier.paused = True
        self.sims = {name: create_simulator(name, notifier=self.notifier) for name in PROVIDERS}
        for sim in self.sims.values():
            sim.serve()

    def point_webhooks(self, shop_url: str) -> None:
        """Adyen and PayPal send to the URL set in their back office (the others: per payment)."""
        for name in ("adyen", "paypal"):
            self.sims[name].webhook_url = f"{shop_url}/psp/notify/{name}"

    def __getitem__(self, name):
        return self.sims[name]

    def settings(self) -> dict:
        """``PSP_PROVIDERS`` for the shop."""
        return {name: {"enabled": True, "mode": "test", "capture": "auto",
                       "test": {**SIMULATOR_CREDENTIALS[name], "endpoint": self.sims[name].url}} for name in PROVIDERS}

    def close(self) -> None:
        for sim in self.sims.values():
            if sim.server is not None:
                sim.server.stop()
        self.notifier.close()


# ---------------------------------------------------------------------------------------------- gunicorn
class Gunicorn:
    """``python -m gunicorn`` serving ``app`` with ``workers`` processes of ``threads`` threads."""

    def __init__(self, app: str, env: dict, workers: int, threads: int, name: str, python: str = sys.executable):
        self.name = name
        self.python = python
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.command = [
            python, "-m", "gunicorn", app,
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(workers),
            "--worker-class", "gthread", "--threads", str(threads),
            "--keep-alive", "5",
            "--graceful-timeout", "10",
            "--log-level", "warning",
        ]
        self.env = {**os.environ, "PYTHONPATH": ROOT, **env}
        self.process: subprocess.Popen | None = None

    def start(self, ready_path: str = "/") -> "Gunicorn":
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env)
        wait_for_port(self.port, process=self.process)
        # every worker booted (the master listens before its workers have imported the app)
        deadline = time.monotonic() + 60
        while len(self.worker_pids()) < self.workers or not self._answers(ready_path):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"{self.name}: gunicorn did not come up")
            time.sleep(0.05)
        return self

    def _answers(self, path: str) -> bool:
        try:
            return requests.get(self.url + path, timeout=5).status_code < 500
        except requests.RequestException:
            return False

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    stat = handle.read()
            except OSError:
                continue
            # the command may hold spaces and parentheses: the fields after the last ')' are fixed
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == self.process.pid:
                pids.append(int(entry))
        return sorted(pids)

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the workers."""
        found = [_process_cpu_ticks(pid) for pid in self.worker_pids()]
        return sum(ticks for _, ticks in filter(None, found)) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> dict:
        """VmHWM (peak resident set) of each worker, in MB."""
        peaks = {}
        for pid in self.worker_pids():
            try:
                with open(f"/proc/{pid}/status") as handle:
                    for line in handle:
                        if line.startswith("VmHWM:"):
                            peaks[pid] = round(int(line.split()[1]) / 1024, 1)
            except OSError:
                continue
        return {"max_mb": max(peaks.values()) if peaks else None, "workers_mb": sorted(peaks.values())}

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def shop_server(database_url: str, simulators: Simulators, workers: int, threads: int, key: str) -> Gunicorn:
    server = Gunicorn("bench.shop_app:app", {}, workers, threads, "shop")
    config = shop_config(database_url, simulators, key, server.url)
    server.env["BENCH_SHOP_CONFIG"] = json.dumps(config)
    return server


def shop_config(database_url: str, simulators: Simulators, key: str, public_url: str) -> dict:
    return {
        "SECRET_KEY": "bench-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "PSP_ENCRYPTION_KEY": key,
        "PSP_PUBLIC_URL": public_url,
        "PSP_PROVIDERS": simulators.settings(),
    }


def baseline_server(database_url: str, simulators: Simulators, workers: int, threads: int) -> Gunicorn:
    return _bare_server("baseline", database_url, simulators, workers, threads)


def floor_server(database_url: str, simulators: Simulators, workers: int, threads: int, shop_url: str) -> Gunicorn:
    """The floor takes the shop's buyer session (its secret key) and names the shop's URLs to the PSPs."""
    return _bare_server("floor", database_url, simulators, workers, threads,
                        secret_key=shop_config(database_url, simulators, "", shop_url)["SECRET_KEY"],
                        public_url=shop_url)


def peer_server(python: str, database_url: str, workers: int, threads: int, schema: str,
                endpoint_secret: str) -> Gunicorn:
    """bench/peer (django-payments) run by ``python`` (its own virtualenv's), its tables in ``schema``
    of the bench's database."""
    config = {"database_url": database_url, "schema": schema, "endpoint_secret": endpoint_secret}
    return Gunicorn("bench.peer.wsgi:application", {"BENCH_PEER_CONFIG": json.dumps(config)}, workers, threads, "peer",
                    python=python)


def prepare_peer(server: Gunicorn, schema: str, payments: int, database_url: str) -> list[str]:
    """The peer's schema emptied, its tables made and ``payments`` payments waiting: their tokens."""
    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    made = subprocess.run([server.python, "-m", "bench.peer.prepare", str(payments)], cwd=ROOT, env=server.env,
                          check=True, capture_output=True, text=True)
    return json.loads(made.stdout)


def _bare_server(name: str, database_url: str, simulators: Simulators, workers: int, threads: int,
                 **more) -> Gunicorn:
    """bench/{name}_app.py, configured by BENCH_{NAME}_CONFIG: the database and the providers'
    credentials and simulator endpoints."""
    providers = {provider: entry["test"] for provider, entry in simulators.settings().items()}
    config = {"database_url": database_url, "providers": providers, **more}
    return Gunicorn(f"bench.{name}_app:app", {f"BENCH_{name.upper()}_CONFIG": json.dumps(config)}, workers, threads,
                    name)
