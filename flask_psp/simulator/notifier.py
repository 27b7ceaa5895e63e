"""How a PSP delivers notifications: asynchronously, from a background thread, retrying while the shop
answers non-2xx or cannot be reached.

    notifier = Notifier(retry_delays=(1, 5, 30))
    delivery = notifier.send("http://127.0.0.1:5000/psp/notify/payplug", b"{}", {"Content-Type": "application/json"})
    assert notifier.wait_until(lambda: delivery.delivered, timeout=10)
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests

__all__ = ["DEFAULT_RETRY_DELAYS", "Delivery", "Notifier"]

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
