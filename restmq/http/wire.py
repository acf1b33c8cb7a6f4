"""What a stream's socket has really sent, and how to drop a stalled connection at once.

A write to a transport returns once its bytes are in a buffer: the transport's own, then the
kernel's send queue (megabytes on a fast link), which drain only as fast as the client reads.
Counting a roundrobin message as delivered when its write returns would lose it if the
connection is then aborted; counting it when the kernel has transmitted its last byte does
not: what was transmitted reaches the client even after a reset.

``Wire.counts`` gives two running totals for the connection: bytes ``handed`` to the transport
since it opened, and bytes ``sent`` by the kernel (acknowledged by the client, or on their way).
A message whose last byte lies at offset ``handed`` (read right after its write) has gone when
``sent`` reaches it. They come from Linux's TCP_INFO (``tcpi_bytes_acked``,
``tcpi_notsent_bytes``), the SIOCOUTQ ioctl and the transport's buffer size; elsewhere (another
OS, a unix socket) ``counts`` is None and a write counts as delivered when it returns.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import socket
import struct
import sys
import termios
from typing import NamedTuple, Protocol

_TCP_INFO_SIZE = 148  # through tcpi_notsent_bytes (Linux >= 4.6)
_BYTES_ACKED = struct.Struct("=Q")  # tcpi_bytes_acked, at offset 120
_NOTSENT = struct.Struct("=I")  # tcpi_notsent_bytes, at offset 144
_ABORT_LINGER = struct.pack("ii", 1, 0)  # close at once with a reset, dropping the queue


class Counts(NamedTuple):
    handed: int  # bytes given to the transport since the connection opened
    sent: int  # of which the kernel has transmitted


class Wire:
    """The byte counts and the abort of one TCP connection."""

    def __init__(self, transport: asyncio.Transport | None) -> None:
        self._transport = transport
        self._sock: _Socket | None = _tracked(transport)

    @property
    def tracks(self) -> bool:
        return self._sock is not None

    def counts(self) -> Counts | None:
        """The running totals now; None when untracked or the connection is gone."""
        transport, sock = self._transport, self._sock
        if sock is None or transport is None or transport.is_closing():
            return None
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
            queued = array.array("i", [0])
            fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, queued)  # unacknowledged + unsent
        except OSError:
            return None
        in_kernel = _BYTES_ACKED.unpack_from(info, 120)[0] + queued[0]
        notsent = _NOTSENT.unpack_from(info, 144)[0]
        return Counts(in_kernel + transport.get_write_buffer_size(), in_kernel - notsent)

    def abort(self) -> None:
        """Close now with a reset: the client sees the connection end, and both send buffers
        are dropped (a plain close would leave the kernel delivering them for minutes)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORT_LINGER)
        transport.abort()


class _Socket(Protocol):
    """What asyncio's and uvloop's transports expose of their socket, as used here."""

    def getsockopt(self, level: int, option: int, size: int, /) -> bytes: ...
    def fileno(self) -> int: ...


def _tracked(transport: asyncio.Transport | None) -> _Socket | None:
    """The transport's socket when its counts can be read (TCP on Linux >= 4.6), else None."""
    if transport is None or not sys.platform.startswith("linux"):
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    except OSError:
        return None
    return sock if len(info) >= _TCP_INFO_SIZE else None
