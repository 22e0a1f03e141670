"""Claim the collector's ports before anything else starts.

Binding first means a port in use (or a second collector on the same ports) fails in
milliseconds with one clear line, before embedded storage is loaded or the write-ahead
log is opened — not after, with a traceback from whichever server tried last.
"""

from __future__ import annotations

import socket


class StartupError(Exception):
    """The collector cannot start; the message is the one line the operator needs."""


def _bound(host: str, port: int, what: str, options: tuple[int, ...], backlog: int | None) -> socket.socket:
    """A TCP socket on ``host:port`` with the SOL_SOCKET ``options`` set, bound, and listening
    when ``backlog`` is given; any failure is one ``StartupError`` line."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen for {what} on {host}:{port}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        for option in options:
            sock.setsockopt(socket.SOL_SOCKET, option, 1)
        sock.bind(address)
        if backlog is not None:
            sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen for {what} on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def listen(host: str, port: int, what: str, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    SO_REUSEADDR (restarts do not wait for TIME_WAIT), and SO_REUSEPORT only for the workers
    of one ``--workers N`` collector: its supervisor holds the port (``reserve``), so no other
    process can take half the connections; otherwise a second process must not bind it."""
    options = (socket.SO_REUSEADDR, socket.SO_REUSEPORT) if reuse_port else (socket.SO_REUSEADDR,)
    sock = _bound(host, port, what, options, backlog=2048)
    sock.setblocking(False)
    return sock


def reserve(host: str, port: int, what: str) -> socket.socket:
    """Hold ``host:port`` for the SO_REUSEPORT listeners of the workers (port 0: pick one).

    Bound, never listening, so the kernel hands it no connections; without SO_REUSEADDR, so a
    plain listener (another collector, or anything else) cannot bind the port while it is
    held — only sockets with SO_REUSEPORT of the same user, the workers', join it."""
    return _bound(host, port, what, (socket.SO_REUSEPORT,), backlog=None)
