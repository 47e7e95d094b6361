"""A stub resolver for racelab's clients: aiodns against the authority, with its
own cache policy in SIMULATED time.

Every client finds DynamoDB the way real clients did: it asks the DNS
authority (a HOST:PORT, not port 53), honours the positive TTL of the answer
and the negative TTL of the zone (RFC 2308: min(SOA TTL, SOA minimum)), and
connects to an address from the answer. TTLs are simulated seconds, so the
cache is keyed on an injected clock (a callable returning simulated seconds)
and never on the wall clock.

Two things in aiodns 4 / pycares 5 shape this module:

* c-ares >= 1.23 keeps a query cache inside every channel, in WALL time, and
  would keep serving a NODATA long after our simulated negative TTL ran out
  (DESIGN.md, known traps). pycares 5.2 has no keyword for it, although the
  `ares_options` struct it compiles against has `qcache_max_ttl`. We create the
  channel with ARES_OPT_QUERY_CACHE and qcache_max_ttl = 0 (the documented way
  to turn the cache off) by wrapping pycares' `ares_init_options` for the one
  call that builds our channel. If a later pycares takes `qcache_max_ttl` as a
  keyword, that is used instead.

* A negative answer reaches Python only as an error number (ARES_ENODATA,
  ARES_ENOTFOUND): pycares drops the response, and with it the SOA in the
  authority section that says how long the answer may be cached. So the
  resolver asks the zone for its SOA itself (an SOA query walking up from the
  name until a label owns one), remembers the zone cut for good and the SOA
  for the SOA's own TTL, and caches the negative answer for
  min(SOA TTL, SOA minimum) - exactly the TTL the authority puts on the SOA
  it would have sent with the negative answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from dataclasses import dataclass
from typing import Callable

import aiodns
import aiodns.error
import pycares
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes.dns_attributes import DNS_QUESTION_NAME
from opentelemetry.semconv._incubating.metrics.dns_metrics import DNS_LOOKUP_DURATION
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from prometheus_client import Histogram

from services.runtime.telemetry import exemplar, prometheus_name

# ares.h (c-ares 1.23+): #define ARES_OPT_QUERY_CACHE (1 << 21). pycares 5.2's
# compiled lib does not export the constant, only the struct field.
ARES_OPT_QUERY_CACHE = 1 << 21

QTYPES = ("A", "AAAA")
_TYPE_A = pycares.QUERY_TYPE_A
_TYPE_AAAA = pycares.QUERY_TYPE_AAAA
_TYPE_CNAME = pycares.QUERY_TYPE_CNAME
_TYPE_SOA = pycares.QUERY_TYPE_SOA
_QTYPE_CODES = {"A": _TYPE_A, "AAAA": _TYPE_AAAA}
MAX_CHAIN = 8


# ---- typed results ----

class DnsError(Exception):
    """A lookup that gave no address. `error_type` is what spans and metrics call it."""

    error_type = "DNS_ERROR"
    outcome = "dns_error"

    def __init__(self, name: str, qtype: str, detail: str = "", cached: bool = False):
        self.name, self.qtype, self.detail, self.cached = name, qtype, detail, cached
        super().__init__(f"{self.error_type} for {name} {qtype}" + (f": {detail}" if detail else ""))


class NoData(DnsError):
    """NOERROR with no record of the type asked for (the October 2025 symptom)."""

    error_type = "NODATA"
    outcome = "dns_nodata"


class NXDomain(DnsError):
    error_type = "NXDOMAIN"
    outcome = "dns_nxdomain"


class ServerFailure(DnsError):
    """SERVFAIL, REFUSED, a malformed answer or a refused connection."""

    error_type = "SERVFAIL"


class Timeout(DnsError):
    error_type = "TIMEOUT"


@dataclass(frozen=True)
class Answer:
    name: str
    qtype: str
    addresses: tuple[str, ...]
    ttl: int  # simulated seconds the answer may be cached from when it was fetched
    cached: bool  # served from this resolver's cache
    chain: tuple[str, ...] = ()  # CNAME targets followed, in order


# ---- the cache ----

@dataclass
class _Entry:
    kind: str  # "addresses", "cname", "nodata", "nxdomain"
    expires_at: float  # simulated seconds
    addresses: tuple[str, ...] = ()
    target: str = ""
    ttl: int = 0
    chain: tuple[str, ...] = ()

    @property
    def negative(self) -> bool:
        return self.kind in ("nodata", "nxdomain")


@dataclass
class _ZoneSoa:
    negative_ttl: int
    expires_at: float


def _norm(name: str) -> str:
    name = name.strip().lower()
    return name[:-1] if name.endswith(".") else name


_init_lock = threading.Lock()


class _LibWithoutQueryCache:
    """pycares' cffi lib, except that ares_init_options turns the query cache off."""

    def __init__(self, lib):
        self._real = lib

    def __getattr__(self, name):
        return getattr(self._real, name)

    def ares_init_options(self, channel, options, optmask):
        options.qcache_max_ttl = 0
        return self._real.ares_init_options(channel, options, optmask | ARES_OPT_QUERY_CACHE)


@contextlib.contextmanager
def _query_cache_disabled():
    with _init_lock:
        real = pycares._lib
        pycares._lib = _LibWithoutQueryCache(real)
        try:
            yield
        finally:
            pycares._lib = real


def make_aiodns_resolver(server: str, *, timeout: float, tries: int) -> aiodns.DNSResolver:
    """An aiodns resolver that asks only `server` ("HOST:PORT") and keeps no cache of its own."""
    kwargs = dict(servers=[server], timeout=timeout, tries=tries)
    if "qcache_max_ttl" in inspect.signature(pycares.Channel.__init__).parameters:
        return aiodns.DNSResolver(qcache_max_ttl=0, **kwargs)
    with _query_cache_disabled():
        return aiodns.DNSResolver(**kwargs)


def _error_for(exc: aiodns.error.DNSError, name: str, qtype: str) -> DnsError:
    code = exc.args[0] if exc.args else None
    detail = exc.args[1] if len(exc.args) > 1 else ""
    e = aiodns.error
    if code == e.ARES_ENODATA:
        return NoData(name, qtype)
    if code in (e.ARES_ENOTFOUND, e.ARES_ENONAME):
        return NXDomain(name, qtype)
    if code == e.ARES_ETIMEOUT:
        return Timeout(name, qtype, detail)
    if code in (e.ARES_ESERVFAIL, e.ARES_EREFUSED, e.ARES_ECONNREFUSED, e.ARES_EBADRESP, e.ARES_EFORMERR,
                e.ARES_ENOTIMP):
        return ServerFailure(name, qtype, detail)
    return DnsError(name, qtype, detail)


# dns.lookup.duration (OpenTelemetry semantic conventions 1.40+, seconds) under OpenTelemetry's
# Prometheus translation. dns.question.name is bounded: the clients look up the few endpoints only.
LOOKUP_DURATION = Histogram(
    prometheus_name(DNS_LOOKUP_DURATION) + "_seconds",
    f"{DNS_LOOKUP_DURATION}: wall time of a client's DNS lookup, cache hits included",
    [prometheus_name(DNS_QUESTION_NAME), prometheus_name(ERROR_TYPE)],
    buckets=(.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))


def _observe_lookup(name: str, error_type: str, started: float, span: trace.Span) -> None:
    """error_type empty (so absent in Prometheus) on success, as the conventions say."""
    LOOKUP_DURATION.labels(name, error_type).observe(time.perf_counter() - started, exemplar=exemplar(span))


class Resolver:
    """Looks names up at one authority; caches answers for their TTLs in simulated time.

    `clock()` returns simulated seconds. `timeout` is WALL seconds per try (it
    bounds a real network exchange); `tries` is how many times c-ares asks.
    """

    def __init__(self, server: str, clock: Callable[[], float], *, timeout: float = 0.5, tries: int = 2,
                 tracer: trace.Tracer | None = None, fallback_negative_ttl: int = 0):
        self.server = server
        self.clock = clock
        self.timeout = timeout
        self.tries = tries
        self.tracer = tracer or trace.get_tracer("racelab.dnsclient")
        self.fallback_negative_ttl = fallback_negative_ttl
        self._aiodns = make_aiodns_resolver(server, timeout=timeout, tries=tries)
        self._cache: dict[tuple[str, str], _Entry] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future] = {}
        self._zone_of: dict[str, str] = {}
        self._soa: dict[str, _ZoneSoa] = {}
        self.queries_sent = 0

    async def close(self) -> None:
        result = self._aiodns.close()
        if inspect.isawaitable(result):
            await result

    # ---- public ----

    async def lookup(self, name: str, qtype: str = "A") -> Answer:
        """Addresses of `name`, following CNAMEs; raises NoData, NXDomain, ServerFailure or Timeout."""
        if qtype not in _QTYPE_CODES:
            raise ValueError(f"lookup of addresses only (A, AAAA), not {qtype}")
        name = _norm(name)
        started = time.perf_counter()
        with self.tracer.start_as_current_span("dns.lookup", kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("dns.question.name", name)
            span.set_attribute("dns.question.type", qtype)
            span.set_attribute("server.address", self.server)
            try:
                answer = await self._lookup(name, qtype, 0)
            except DnsError as exc:
                span.set_attribute("racelab.dns.answer_count", 0)
                span.set_attribute("racelab.dns.cache", "hit" if exc.cached else "miss")
                span.set_attribute("error.type", exc.error_type)
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
                _observe_lookup(name, exc.error_type, started, span)
                raise
            _observe_lookup(name, "", started, span)
            span.set_attribute("racelab.dns.answer_count", len(answer.addresses))
            span.set_attribute("racelab.dns.cache", "hit" if answer.cached else "miss")
            if answer.chain:
                span.set_attribute("racelab.dns.cname_chain", list(answer.chain))
            return answer

    def cache_counts(self) -> dict[str, int]:
        """Unexpired entries now: {"positive": n, "negative": m}."""
        now = self.clock()
        counts = {"positive": 0, "negative": 0}
        for key, entry in list(self._cache.items()):
            if entry.expires_at <= now:
                del self._cache[key]
                continue
            counts["negative" if entry.negative else "positive"] += 1
        return counts

    def flush(self) -> None:
        self._cache.clear()
        self._soa.clear()

    # ---- the work ----

    async def _lookup(self, name: str, qtype: str, depth: int) -> Answer:
        entry = self._cached(name, qtype)
        cached = entry is not None
        if entry is None:
            entry = await self._fetch_once(name, qtype)
        if entry.kind == "addresses":
            return Answer(name, qtype, entry.addresses, entry.ttl, cached, entry.chain)
        if entry.kind == "nodata":
            raise NoData(name, qtype, cached=cached)
        if entry.kind == "nxdomain":
            raise NXDomain(name, qtype, cached=cached)
        # A CNAME with nothing of the type behind it in the answer: chase it
        # ourselves (the authority does not follow CNAMEs out of its zones).
        if depth >= MAX_CHAIN:
            raise ServerFailure(name, qtype, "CNAME chain too long", cached=cached)
        try:
            inner = await self._lookup(entry.target, qtype, depth + 1)
        except DnsError as exc:
            exc.cached = exc.cached and cached
            raise
        return Answer(name, qtype, inner.addresses, min(entry.ttl, inner.ttl), cached and inner.cached,
                      (entry.target,) + inner.chain)

    def _cached(self, name: str, qtype: str) -> _Entry | None:
        entry = self._cache.get((name, qtype))
        if entry is None:
            return None
        if entry.expires_at <= self.clock():
            del self._cache[(name, qtype)]
            return None
        return entry

    async def _fetch_once(self, name: str, qtype: str) -> _Entry:
        """One query on the wire per (name, type) at a time; concurrent callers share it."""
        key = (name, qtype)
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            entry = await self._fetch(name, qtype)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: joiners re-raise it, nobody may be waiting
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(entry)
        return entry

    async def _fetch(self, name: str, qtype: str) -> _Entry:
        self.queries_sent += 1
        try:
            result = await self._query(name, qtype)
        except aiodns.error.DNSError as exc:
            error = _error_for(exc, name, qtype)
            if isinstance(error, (NoData, NXDomain)):
                ttl = await self._negative_ttl(name)
                entry = _Entry("nodata" if isinstance(error, NoData) else "nxdomain", self.clock() + ttl, ttl=ttl)
                if ttl > 0:
                    self._cache[(name, qtype)] = entry
                return entry
            raise error from None
        code = _QTYPE_CODES[qtype]
        addresses = tuple(rr.data.addr for rr in result.answer if rr.type == code)
        now = self.clock()
        if addresses:
            ttl = min(rr.ttl for rr in result.answer)
            entry = _Entry("addresses", now + ttl, addresses=addresses, ttl=ttl,
                           chain=self._chain(name, result.answer))
        else:
            target = self._end_of_chain(name, result.answer)
            if target is None or target == name:
                # NOERROR, nothing usable, no CNAME: NODATA in all but name.
                ttl = await self._negative_ttl(name)
                entry = _Entry("nodata", now + ttl, ttl=ttl)
            else:
                ttl = min(rr.ttl for rr in result.answer if rr.type == _TYPE_CNAME)
                entry = _Entry("cname", now + ttl, target=target, ttl=ttl)
        if entry.ttl > 0:
            self._cache[(name, qtype)] = entry
        return entry

    @staticmethod
    def _chain(name: str, answer) -> tuple[str, ...]:
        """The CNAME targets the answer leads through from `name`, in order."""
        links = {_norm(rr.name): _norm(rr.data.cname) for rr in answer if rr.type == _TYPE_CNAME}
        chain: list[str] = []
        while name in links and links[name] not in chain and len(chain) < MAX_CHAIN:
            name = links[name]
            chain.append(name)
        return tuple(chain)

    def _end_of_chain(self, name: str, answer) -> str | None:
        chain = self._chain(name, answer)
        return chain[-1] if chain else None

    async def _query(self, name: str, qtype: str):
        # c-ares enforces timeout x tries itself; the outer bound only guards
        # against a resolver that never calls back.
        limit = self.timeout * self.tries * 2 + 1.0
        try:
            return await asyncio.wait_for(self._aiodns.query_dns(name, qtype), limit)
        except asyncio.TimeoutError:
            raise aiodns.error.DNSError(aiodns.error.ARES_ETIMEOUT, "no answer") from None

    # ---- negative TTL from the zone's SOA ----

    async def _negative_ttl(self, name: str) -> int:
        zone = self._zone_of.get(name)
        if zone is not None:
            soa = self._soa.get(zone)
            if soa is not None and soa.expires_at > self.clock():
                return soa.negative_ttl
        try:
            return await self._find_soa(name)
        except DnsError:
            return self.fallback_negative_ttl

    async def _find_soa(self, name: str) -> int:
        """Walk up from `name` until a name owns an SOA; remember the zone cut and the SOA."""
        candidate = self._zone_of.get(name, name)
        while True:
            try:
                result = await self._query(candidate, "SOA")
            except aiodns.error.DNSError as exc:
                error = _error_for(exc, candidate, "SOA")
                if not isinstance(error, (NoData, NXDomain)):
                    raise error from None
                result = None
            soas = [rr for rr in (result.answer if result else ()) if rr.type == _TYPE_SOA]
            if soas:
                rr = soas[0]
                negative = min(rr.ttl, rr.data.minimum)
                self._zone_of[name] = candidate
                self._soa[candidate] = _ZoneSoa(negative, self.clock() + rr.ttl)
                return negative
            if "." not in candidate:
                raise ServerFailure(name, "SOA", "no zone owns this name")
            candidate = candidate.split(".", 1)[1]
