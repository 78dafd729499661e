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
    return create_server(create_app(config), host=host.strip("[]"), port=int(port), threads=8,
                         ident="imr-packet", clear_untrusted_proxy_headers=True)


def run_until_closed(server) -> None:
    """Serve until another thread calls `server.close()` (the closed socket ends the loop)."""
    try:
        server.run()
    except (OSError, ValueError):
        # waitress's close() closes the socket, then forgets it (None): the loop may fail in between
        # or after, and either way the server was closed on purpose.
        if server.socket is not None and server.socket.fileno() != -1:
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
