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


def test_a_loop_that_fails_while_the_server_closes_is_a_stop_not_an_error(config):
    """waitress's close() closes its wake-up pipe before its socket: the loop's select() can fail
    on the pipe while the socket is still open (seen once in a full run). That is the stop."""
    server = make_server(config, listen="127.0.0.1:0")
    pipe_closed, loop_failed = threading.Event(), threading.Event()
    outcome = []

    def run():  # the loop, as select() meets the wake-up pipe closed under it
        pipe_closed.wait(10)
        raise OSError(errno.EBADF, "Bad file descriptor")

    close_pipe = server.trigger.close

    def close_pipe_then_wait():
        close_pipe()
        pipe_closed.set()
        loop_failed.wait(10)  # the loop fails before close() goes on to the socket

    def serve():
        try:
            run_until_closed(server)
            outcome.append("stopped")
        except OSError as exc:
            outcome.append(exc)
        finally:
            loop_failed.set()

    server.run = run
    server.trigger.close = close_pipe_then_wait
    thread = threading.Thread(target=serve)
    thread.start()
    server.close()
    thread.join(timeout=10)
    assert outcome == ["stopped"]


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
