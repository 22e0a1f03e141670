"""Claim the collector's ports before anything else starts.

Binding first means a port in use (or a second collector on the same ports) fails in
milliseconds with one clear line, before embedded storage is loaded or the write-ahead
log is opened — not after, with a traceback from whichever server tried last.
"""

from __future__ import annotations

import socket


class StartupError(Exception):
    """The collector cannot start; the message is the one line the operator needs."""


def listen(host: str, port: int, what: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    SO_REUSEADDR only (restarts do not wait for TIME_WAIT), never SO_REUSEPORT: a second
    process must not be able to bind the same port and take half the connections."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen for {what} on {host}:{port}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen for {what} on {host}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock
