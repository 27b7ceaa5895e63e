"""Wire-faithful stand-ins for the payment service providers, served on loopback.

Provider-neutral machinery lives here:

* :class:`Notifier` delivers notifications the way a PSP does: asynchronously, from a background thread,
  retrying while the shop answers non-2xx or cannot be reached.
* :class:`SimulatorServer` serves a WSGI app on a loopback port in a daemon thread.
* :class:`ProviderSimulator` is the base of every provider's simulator (accounts, a notifier, a Flask app).
* :func:`create_simulator` builds a simulator by provider name from :data:`SIMULATORS`.

The simulators are written from the PSP's side and share no code with the provider clients in
``flask_psp.providers``: nothing here imports from ``flask_psp`` outside this package.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import flask
import requests
from werkzeug.serving import make_server

__all__ = [
    "Delivery",
    "Notifier",
    "ProviderSimulator",
    "SIMULATORS",
    "SimulatorServer",
    "create_simulator",
]

logger = logging.getLogger("flask_psp.simulator")

DEFAULT_RETRY_DELAYS = (1, 5, 30, 120, 600)

# Delivery life cycle (internal): queued -> in_flight -> (waiting -> in_flight)* -> done
_QUEUED, _IN_FLIGHT, _WAITING, _DONE = "queued", "in_flight", "waiting", "done"


@dataclass(eq=False)
class Delivery:
    """One notification: where it goes, what it carries and how each attempt went."""

    url: str
    body: bytes
    headers: dict
    attempts: list = field(default_factory=list)  # (http_status: int | None, error: str | None) per attempt
    delivered: bool = False  # a 2xx was received
    gave_up: bool = False  # every retry delay was used up without a 2xx
    _state: str = field(default=_QUEUED, repr=False)
    _due: float = field(default=0.0, repr=False)
    _on_attempt: Callable[["Delivery", int | None, str | None], None] | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.delivered or self.gave_up

    @property
    def last_status(self) -> int | None:
        return self.attempts[-1][0] if self.attempts else None


class Notifier:
    """Delivers notifications asynchronously (background thread), as a PSP does, retrying while the shop
    answers non-2xx or is unreachable.

    A delivery is attempted at once, then again ``retry_delays[0]`` seconds after a first failure,
    ``retry_delays[1]`` after a second, and so on; it gives up when the delays are used up. Waiting uses a
    :class:`threading.Condition`, so :meth:`retry_now` wakes every waiting delivery, and :meth:`wait_until`
    re-evaluates its predicate after every attempt.
    """

    def __init__(self, retry_delays=DEFAULT_RETRY_DELAYS, timeout=10):
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        self._pending: list[Delivery] = []  # not done yet, in queueing order
        self._cond = threading.Condition()  # an RLock: predicates may call back into the notifier
        self._paused = False
        self._closed = False
        self._dispatcher = threading.Thread(target=self._dispatch, name="psp-simulator-notifier", daemon=True)
        self._dispatcher.start()

    # ------------------------------------------------------------------ public face
    @property
    def paused(self) -> bool:
        return self._paused

    @paused.setter
    def paused(self, value: bool) -> None:
        with self._cond:
            self._paused = bool(value)
            self._cond.notify_all()

    def send(self, url: str, body: bytes, headers: dict, *, on_attempt=None) -> Delivery:
        """Queue a POST of ``body`` to ``url``; returns at once. ``on_attempt(delivery, status, error)`` is
        called (from the delivery thread) after each attempt, before the attempt is recorded."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        delivery = Delivery(url=url, body=body, headers=dict(headers), _on_attempt=on_attempt)
        with self._cond:
            if self._closed:
                raise RuntimeError("this notifier is closed")
            delivery._due = time.monotonic()
            self.deliveries.append(delivery)
            self._pending.append(delivery)
            self._cond.notify_all()
        logger.info("notification queued for %s (%d bytes)", url, len(body))
        return delivery

    def wait_until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> bool:
        """Block until ``predicate()`` is true (re-evaluated after every attempt and every queued delivery);
        returns False when ``timeout`` seconds pass first."""
        with self._cond:
            return bool(self._cond.wait_for(predicate, timeout=timeout))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no delivery is queued, in flight or waiting for a retry."""
        return self.wait_until(lambda: not self._pending, timeout=timeout)

    def retry_now(self) -> None:
        """Make every delivery waiting for a retry due now."""
        with self._cond:
            now = time.monotonic()
            for delivery in self._pending:
                if delivery._state == _WAITING:
                    delivery._due = now
            self._cond.notify_all()

    def close(self) -> None:
        """Stop dispatching; deliveries not yet done are abandoned. Safe to call twice."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._dispatcher is not threading.current_thread():
            self._dispatcher.join(timeout=5)

    # ------------------------------------------------------------------ machinery
    def _dispatch(self) -> None:
        with self._cond:
            while not self._closed:
                if self._paused:
                    self._cond.wait()
                    continue
                now = time.monotonic()
                next_due = None
                for delivery in self._pending:
                    if delivery._state not in (_QUEUED, _WAITING):
                        continue
                    if delivery._due <= now:
                        delivery._state = _IN_FLIGHT
                        threading.Thread(
                            target=self._attempt, args=(delivery,), name="psp-simulator-delivery", daemon=True
                        ).start()
                    elif next_due is None or delivery._due < next_due:
                        next_due = delivery._due
                self._cond.wait(timeout=None if next_due is None else max(next_due - now, 0.001))

    def _attempt(self, delivery: Delivery) -> None:
        number = len(delivery.attempts) + 1
        status: int | None = None
        error: str | None = None
        try:
            with requests.Session() as session:
                session.trust_env = False  # loopback: never through a proxy from the environment
                response = session.post(
                    delivery.url, data=delivery.body, headers=delivery.headers,
                    timeout=self.timeout, allow_redirects=False,
                )
                status = response.status_code
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        if ok:
            logger.info("notification to %s, attempt %d: HTTP %s", delivery.url, number, status)
        else:
            logger.warning("notification to %s, attempt %d failed: %s", delivery.url, number,
                           f"HTTP {status}" if status is not None else error)
        if delivery._on_attempt is not None:
            try:
                delivery._on_attempt(delivery, status, error)
            except Exception:  # a bookkeeping hook must not kill the delivery
                logger.exception("notification hook failed")
        with self._cond:
            delivery.attempts.append((status, error))
            if ok:
                delivery.delivered = True
            elif number > len(self.retry_delays):
                delivery.gave_up = True
                logger.warning("notification to %s: giving up after %d attempts", delivery.url, number)
            else:
                delivery._state = _WAITING
                delivery._due = time.monotonic() + self.retry_delays[number - 1]
            if delivery.done:
                delivery._state = _DONE
                self._pending.remove(delivery)
            self._cond.notify_all()


class SimulatorServer:
    """Serves a WSGI app on 127.0.0.1 in a daemon thread (werkzeug.serving.make_server, threaded=True)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self.host = host
        self.port = port
        self.url: str | None = None
        self._server = None
        self._thread: threading.Thread | None = None

    def start(self) -> "SimulatorServer":
        if self._server is not None:
            return self
        self._server = make_server(self.host, self.port, self.app, threaded=True)
        self.port = self._server.socket.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"psp-simulator-server:{self.port}", daemon=True,
        )
        self._thread.start()
        logger.info("serving on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> "SimulatorServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class ProviderSimulator:
    """Base: holds accounts, a Notifier and a Flask app (``self.app``)."""

    name: str = ""

    def __init__(self, accounts: dict | None = None, notifier: Notifier | None = None,
                 retry_delays=DEFAULT_RETRY_DELAYS):
        self.accounts: dict = dict(accounts) if accounts is not None else {}
        self._owns_notifier = notifier is None
        self.notifier: Notifier = notifier if notifier is not None else Notifier(retry_delays=retry_delays)
        self.app: flask.Flask = flask.Flask(f"flask_psp.simulator.{self.name or 'base'}")
        self.url: str | None = None
        self.server: SimulatorServer | None = None
        self.lock = threading.RLock()

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> SimulatorServer:
        """Start serving ``self.app``; returns the started server and sets ``self.url``."""
        server = SimulatorServer(self.app, host, port).start()
        self.server = server
        self.url = server.url
        return server

    def base_url(self) -> str:
        """The simulator's own URL: the served one, else (inside a request) the request's root."""
        if self.url:
            return self.url
        if flask.has_request_context():
            return flask.request.host_url.rstrip("/")
        return ""

    def describe(self) -> list[str]:
        """Human lines for the command line (keys, test cards…)."""
        return []

    def reset(self) -> None:
        """Forget every resource."""

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self._owns_notifier:
            self.notifier.close()


# name -> class, or "module:attribute" imported on first use (keeps this package free of import cycles).
SIMULATORS: dict[str, Any] = {
    "adyen": "flask_psp.simulator.adyen:AdyenSimulator",
    "hipay": "flask_psp.simulator.hipay:HiPaySimulator",
    "paypal": "flask_psp.simulator.paypal:PayPalSimulator",
    "payplug": "flask_psp.simulator.payplug:PayPlugSimulator",
    "sips": "flask_psp.simulator.sips:SipsSimulator",
}


def _simulator_class(name: str):
    try:
        target = SIMULATORS[name]
    except KeyError:
        raise KeyError(f"no simulator for provider {name!r}; known: {', '.join(sorted(SIMULATORS))}") from None
    if isinstance(target, str):
        module_name, _, attribute = target.partition(":")
        target = getattr(importlib.import_module(module_name), attribute)
        SIMULATORS[name] = target
    return target


def create_simulator(name: str, **options) -> ProviderSimulator:
    """Build the simulator registered under ``name`` (e.g. ``"payplug"``) with ``options``."""
    return _simulator_class(name)(**options)
