"""A small HTTP load generator: client processes (spawned, so no lock or socket of the parent is
inherited), each running a few threads with one keep-alive connection per thread and target.

``LoadGenerator.run(requests, concurrency)`` spreads the requests over the processes, starts them all
at once and returns one :class:`Sample` per request. Latencies and wall time are read from
CLOCK_MONOTONIC, which every process on the machine shares.
"""

from __future__ import annotations

import http.client
import multiprocessing
import queue
import threading
import time
from dataclasses import dataclass, field

TIMEOUT = 30


@dataclass
class Request:
    host: str
    port: int
    method: str
    path: str
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    tag: str = ""
    keep_body: bool = False
    #: False: a connection of its own, closed after the answer (as a PSP sends a notification)
    keep_alive: bool = True


@dataclass
class Sample:
    tag: str
    status: int  # 0: no HTTP answer (connection error, timeout)
    started: float
    ended: float
    location: str | None = None
    body: bytes | None = None
    error: str | None = None

    @property
    def latency(self) -> float:
        return self.ended - self.started


class _Connections:
    def __init__(self):
        self._open: dict[tuple[str, int], http.client.HTTPConnection] = {}

    def send(self, request: Request) -> tuple[int, str | None, bytes]:
        key = (request.host, request.port)
        for attempt in (1, 2):
            connection = self._open.get(key)
            reused = connection is not None
            if connection is None:
                connection = self._open[key] = http.client.HTTPConnection(request.host, request.port, timeout=TIMEOUT)
            try:
                headers = dict(request.headers)
                headers.setdefault("Content-Length", str(len(request.body)))
                if not request.keep_alive:
                    headers["Connection"] = "close"
                connection.request(request.method, request.path, body=request.body or None, headers=headers)
                response = connection.getresponse()
                body = response.read()
                if response.will_close or not request.keep_alive:
                    self.close(key)
                return response.status, response.getheader("Location"), body
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close(key)
                if not reused or attempt == 2:
                    raise
                # the server closed an idle keep-alive connection before this request reached it: send it again
        raise AssertionError("unreachable")

    def close(self, key) -> None:
        connection = self._open.pop(key, None)
        if connection is not None:
            connection.close()

    def close_all(self) -> None:
        for key in list(self._open):
            self.close(key)


def _worker_thread(jobs: "queue.SimpleQueue[Request | None]", results: list, start: threading.Event) -> None:
    connections = _Connections()
    start.wait()
    try:
        while True:
            request = jobs.get()
            if request is None:
                return
            started = time.monotonic()
            try:
                status, location, body = connections.send(request)
                error = None
            except Exception as exc:  # noqa: BLE001 - counted as a failed request
                status, location, body, error = 0, None, b"", f"{type(exc).__name__}: {exc}"
            ended = time.monotonic()
            results.append(Sample(request.tag, status, started, ended, location,
                                  body if request.keep_body else None, error))
    finally:
        connections.close_all()


def _client_main(pipe) -> None:
    while True:
        message = pipe.recv()
        if message is None:
            return
        requests, threads = message
        jobs: queue.SimpleQueue = queue.SimpleQueue()
        for request in requests:
            jobs.put(request)
        for _ in range(threads):
            jobs.put(None)
        results: list[Sample] = []
        start = threading.Event()
        workers = [threading.Thread(target=_worker_thread, args=(jobs, results, start), daemon=True)
                   for _ in range(threads)]
        for worker in workers:
            worker.start()
        pipe.send("ready")
        pipe.recv()  # go
        start.set()
        for worker in workers:
            worker.join()
        pipe.send(results)


class LoadGenerator:
    def __init__(self, processes: int = 4):
        context = multiprocessing.get_context("spawn")
        self._pipes = []
        self._processes = []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=_client_main, args=(child,), daemon=True, name="bench-client")
            process.start()
            self._pipes.append(parent)
            self._processes.append(process)

    def run(self, requests: list[Request], concurrency: int) -> tuple[list[Sample], float]:
        """Send ``requests`` with ``concurrency`` requests in flight at most; (samples, wall seconds)."""
        used = min(concurrency, len(self._pipes))
        threads = [concurrency // used + (1 if i < concurrency % used else 0) for i in range(used)]
        shares: list[list[Request]] = [[] for _ in range(used)]
        # a process takes requests in proportion to its threads, in the order given
        slots = [i for i in range(used) for _ in range(threads[i])]
        for index, request in enumerate(requests):
            shares[slots[index % len(slots)]].append(request)
        for i in range(used):
            self._pipes[i].send((shares[i], threads[i]))
        for i in range(used):
            assert self._pipes[i].recv() == "ready"
        began = time.monotonic()
        for i in range(used):
            self._pipes[i].send("go")
        samples: list[Sample] = []
        for i in range(used):
            samples.extend(self._pipes[i].recv())
        wall = max(s.ended for s in samples) - began if samples else 0.0
        return samples, wall

    def close(self) -> None:
        for pipe in self._pipes:
            try:
                pipe.send(None)
            except (BrokenPipeError, OSError):
                pass
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def summary(samples: list[Sample], wall: float) -> dict:
    latencies = [s.latency * 1000 for s in samples]
    ok = sum(1 for s in samples if 200 <= s.status < 400)
    return {
        "requests": len(samples),
        "ok": ok,
        "failed": len(samples) - ok,
        "throughput_rps": round(len(samples) / wall, 1) if wall else None,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
    }
