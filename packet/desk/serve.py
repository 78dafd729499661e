"""Running the desk: waitress serving the Flask app on [web] listen (127.0.0.1:8750 by default)."""

from __future__ import annotations

import sys

from waitress import create_server

from packet.config import Config
from packet.desk.app import create_app
from packet.log import log


def make_server(config: Config, *, listen: str | None = None):
    """A waitress server for the desk, bound but not yet serving (`.run()` serves, `.close()` stops)."""
    host, _, port = (listen or config.web.listen).rpartition(":")
    server = create_server(create_app(config), host=host.strip("[]"), port=int(port), threads=8,
                           ident="imr-packet", clear_untrusted_proxy_headers=True)
    close = server.close

    def close_on_purpose() -> None:
        server.closing = True  # before anything is closed: see run_until_closed
        close()

    server.closing = False
    server.close = close_on_purpose
    return server


def run_until_closed(server) -> None:
    """Serve until another thread calls `server.close()` (the closed socket ends the loop)."""
    try:
        server.run()
    except (OSError, ValueError):
        # waitress's close() closes its wake-up pipe, then the listening socket, then forgets it: the
        # loop's select() may fail on either while close() runs, with the socket still open. A failure
        # once close() has begun is the stop; one before it is a real failure of the server.
        if not getattr(server, "closing", False):
            raise


def serve(config: Config) -> int:
    server = make_server(config)
    address = f"http://{config.web.listen}/"
    print(f"Review desk: {address} (sign in with an account made by `imr-packet user add NAME --role clerk`)",
          file=sys.stderr, flush=True)
    log("desk_started", port=int(config.web.listen.rpartition(":")[2]), auth=config.web.auth)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
