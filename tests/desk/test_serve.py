"""Running the desk's server (packet.desk.serve): it stops quietly when closed from another thread,
and a socket failure of a server nobody closed still comes out."""

from __future__ import annotations

import errno
import threading

import pytest

from packet.desk.serve import make_server, run_until_closed


def test_a_server_closed_from_another_thread_ends_its_loop_quietly(config):
    server = make_server(config, listen="127.0.0.1:0")

    def run():  # the loop's select fails once close() has closed (and forgotten) the socket
        server.close()
        raise OSError(errno.EBADF, "Bad file descriptor")

    server.run = run
    run_until_closed(server)
    assert server.socket is None


def test_a_closed_server_really_stops_serving(config):
    server = make_server(config, listen="127.0.0.1:0")
    thread = threading.Thread(target=run_until_closed, args=(server,))
    thread.start()
    server.close()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_socket_failure_of_an_open_server_is_raised(config):
    server = make_server(config, listen="127.0.0.1:0")

    def run():
        raise OSError(errno.EBADF, "Bad file descriptor")

    server.run = run
    try:
        with pytest.raises(OSError):
            run_until_closed(server)
    finally:
        server.close()
