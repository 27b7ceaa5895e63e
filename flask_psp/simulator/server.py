"""A WSGI app served on a loopback port in a daemon thread.

    with SimulatorServer(app) as server:
        requests.get(server.url + "/v1/payments/pay_x")
"""

from __future__ import annotations

import logging
import threading

from werkzeug.serving import make_server

__all__ = ["SimulatorServer"]

logger = logging.getLogger("flask_psp.simulator")


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
