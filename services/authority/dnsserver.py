"""DNS over UDP and TCP on one address, answered by an AnswerCache.

UDP: the socket is read directly from the event loop's reader callback,
draining up to a burst of datagrams per wake-up (one epoll wake-up per packet
is what makes naive asyncio servers slow). TCP: RFC 1035 two-byte length
framing, several queries per connection, idle connections closed.

Queue wait: on Linux the kernel stamps each UDP datagram as it arrives
(SO_TIMESTAMPNS). The first datagram of every wake-up is read with its stamp,
so `QueueWait` sees how long the oldest waiting query sat in the socket before
the authority got to it - the process waiting for a CPU or the event loop busy
with a batch - apart from the time spent in the network or in the asker.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import socket
import struct
import sys
import time

from services.runtime.service import ConfigError

from .answers import AnswerCache

log = logging.getLogger(__name__)

BURST = 128
TCP_IDLE_SECONDS = 10.0
MAX_TCP_CONNECTIONS = 256

# Linux's SO_TIMESTAMPNS (= SCM_TIMESTAMPNS); Python's socket module does not name it. The stamp is a
# struct timespec of two native longs, on the same clock as time.time().
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("@ll")
STAMP_SPACE = socket.CMSG_SPACE(TIMESPEC.size)
QUEUE_WAIT_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1.0)


class QueueWait:
    """A histogram of how long the oldest UDP query of each wake-up waited in the socket, kept as plain
    counts (read at scrape time: a prometheus_client histogram costs more than answering a query)."""

    def __init__(self) -> None:
        self.buckets = [0] * (len(QUEUE_WAIT_BUCKETS) + 1)  # the last: above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        seconds = max(0.0, seconds)  # the wall clock may step between the stamp and now
        self.buckets[bisect.bisect_left(QUEUE_WAIT_BUCKETS, seconds)] += 1
        self.sum += seconds
        self.count += 1


def enable_receive_stamps(udp: socket.socket) -> bool:
    """Ask the kernel to stamp each datagram as it arrives; False where it cannot (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        udp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def received_at(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's arrival stamp (time.time() seconds) among a datagram's ancillary data, if any."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack_from(data)
            return sec + nsec / 1e9
    return None


def bind_dns(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets bound to host:port (ConfigError if that cannot be done)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise ConfigError(f"--dns-listen: cannot resolve {host!r}: {exc.strerror}") from None
    family, _, _, _, addr = infos[0]
    udp = socket.socket(family, socket.SOCK_DGRAM)
    tcp = socket.socket(family, socket.SOCK_STREAM)
    try:
        udp.bind(addr)
        if port == 0:  # one port for both
            addr = (addr[0], udp.getsockname()[1]) + tuple(addr[2:])
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(addr)
        tcp.listen(128)
    except OSError as exc:
        udp.close()
        tcp.close()
        raise ConfigError(f"--dns-listen: cannot listen on {host}:{port}: {exc.strerror}") from None
    for sock in (udp, tcp):
        sock.setblocking(False)
    try:
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    except OSError:
        pass
    return udp, tcp


class DnsServer:
    def __init__(self, cache: AnswerCache, udp: socket.socket, tcp: socket.socket):
        self.cache = cache
        self.udp = udp
        self.tcp = tcp
        self.tcp_accepted = 0
        self._tcp_server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.queue_wait = QueueWait()
        self._stamped = enable_receive_stamps(udp)

    @property
    def address(self) -> tuple[str, int]:
        return self.udp.getsockname()[:2]

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.udp.fileno(), self._on_udp)
        self._tcp_server = await asyncio.start_server(self._on_tcp, sock=self.tcp)

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.udp.fileno())
        if self._tcp_server is not None:
            self._tcp_server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
        self.udp.close()

    def _on_udp(self) -> None:
        sock, handle, cache = self.udp, self.cache.handle, self.cache
        stamp = self._stamped  # the first read of a wake-up is the oldest datagram waiting: time it
        for _ in range(BURST):
            try:
                if stamp:
                    stamp = False
                    data, ancdata, _, addr = sock.recvmsg(4096, STAMP_SPACE)
                    arrived = received_at(ancdata)
                    if arrived is not None:
                        self.queue_wait.observe(time.time() - arrived)
                else:
                    data, addr = sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. an ICMP error queued for an earlier reply
                continue
            try:
                resp = handle(data, True)
                if resp is not None:
                    sock.sendto(resp, addr)
            except OSError:
                pass  # send buffer full or peer gone: UDP, drop it
            except Exception:
                cache.errors += 1
                log.exception("UDP packet from %s", addr)

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self._connections) >= MAX_TCP_CONNECTIONS:
            writer.close()
            return
        self.tcp_accepted += 1
        self._connections.add(task)
        try:
            while True:
                size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_SECONDS))[0]
                data = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE_SECONDS)
                try:
                    resp = self.cache.handle(data, False)
                except Exception:
                    self.cache.errors += 1
                    log.exception("TCP query")
                    resp = None
                if resp is None:
                    break  # unreadable or not a query: the stream cannot be trusted any more
                writer.write(struct.pack("!H", len(resp)) + resp)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(task)
            writer.close()
