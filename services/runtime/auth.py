"""Who may call what: bearer tokens in files, an ACL per run, a gRPC server interceptor.

Every process has one identity, a random token read from `--token-file` (as a
Kubernetes Secret mounts it); `channel()` sends it on every call as metadata
`authorization: Bearer <token>`. A server reads `--acl-file`: for each identity
the SHA-256 of its token (never the token), the methods it may call
("racelab.v1.Planner/GetPlan", fnmatch patterns allowed) and, for the
authority's ChangeResourceRecordSets, the hosted zones it may change.

A call with no or an unknown token is UNAUTHENTICATED, a known identity calling
what it may not is PERMISSION_DENIED; either is counted in
racelab_auth_denied_total{service,method,code}, logged, and never reaches the
servicer. Health checks and reflection stay open (probes need them).

Without an ACL or a token a process refuses to start unless `--insecure`
(RACELAB_INSECURE=1) says explicitly that it may run without authentication.
"""

from __future__ import annotations

import contextvars
import fnmatch
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import yaml
from prometheus_client import Counter

log = logging.getLogger("racelab.auth")

DENIED = Counter("racelab_auth_denied", "Calls refused for missing, unknown or insufficient credentials",
                 ["service", "method", "code"])
OPEN_PREFIXES = ("grpc.health.v1.Health/", "grpc.reflection.")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_IDENTITY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_caller: contextvars.ContextVar["Grant | None"] = contextvars.ContextVar("racelab_caller", default=None)


class AuthConfigError(ValueError):
    """A token or ACL file that cannot be used (the message names the file)."""


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Grant:
    """What one identity may do."""

    identity: str
    methods: tuple[str, ...]  # patterns over "racelab.v1.Service/Method"
    zones: tuple[str, ...] = ()  # patterns over hosted zone names, lower case, no final dot

    def may_call(self, method: str) -> bool:
        return any(fnmatch.fnmatchcase(method, pattern) for pattern in self.methods)

    def may_change(self, zone: str) -> bool:
        zone = zone.rstrip(".").lower()
        return any(fnmatch.fnmatchcase(zone, pattern) for pattern in self.zones)


class Acl:
    def __init__(self, grants: dict[str, tuple[str, Grant]]):
        self.by_hash = {digest: grant for digest, grant in grants.values()}
        self.grants = {name: grant for name, (_, grant) in grants.items()}

    def identify(self, token: str) -> Grant | None:
        return self.by_hash.get(token_sha256(token))

    @classmethod
    def parse(cls, text: str, source: str) -> "Acl":
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise AuthConfigError(f"{source}: not YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("identities"), dict) or not doc["identities"]:
            raise AuthConfigError(f"{source}: expected a mapping 'identities: {{name: {{token_sha256, methods}}}}'")
        unknown = set(doc) - {"identities"}
        if unknown:
            raise AuthConfigError(f"{source}: unknown key(s): {', '.join(sorted(map(str, unknown)))}")
        grants: dict[str, tuple[str, Grant]] = {}
        seen: set[str] = set()
        for name, entry in doc["identities"].items():
            where = f"{source}: identities.{name}"
            if not isinstance(name, str) or not _IDENTITY.match(name):
                raise AuthConfigError(f"{where}: not an identity name (lower-case letters, digits, '-')")
            if not isinstance(entry, dict):
                raise AuthConfigError(f"{where}: expected a mapping")
            extra = set(entry) - {"token_sha256", "methods", "zones"}
            if extra:
                raise AuthConfigError(f"{where}: unknown key(s): {', '.join(sorted(map(str, extra)))}")
            digest = entry.get("token_sha256")
            if not isinstance(digest, str) or not _SHA256.match(digest):
                raise AuthConfigError(f"{where}.token_sha256: expected 64 lower-case hex digits")
            if digest in seen:
                raise AuthConfigError(f"{where}.token_sha256: the same token as another identity")
            seen.add(digest)
            methods, zones = entry.get("methods", []), entry.get("zones", [])
            for key, value in (("methods", methods), ("zones", zones)):
                if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                    raise AuthConfigError(f"{where}.{key}: expected a list of non-empty strings")
            grants[name] = (digest, Grant(name, tuple(methods), tuple(z.rstrip(".").lower() for z in zones)))
        return cls(grants)

    @classmethod
    def load(cls, path: str | Path) -> "Acl":
        return cls.parse(_read(path, "--acl-file"), str(path))


def read_token(path: str | Path) -> str:
    token = _read(path, "--token-file").strip()
    if not token or any(c.isspace() for c in token):
        raise AuthConfigError(f"{path}: expected one token (no spaces) in the file")
    return token


def _read(path: str | Path, setting: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise AuthConfigError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise AuthConfigError(f"{setting}: {path} is not text") from None


# ---- this process's security settings ------------------------------------

@dataclass(frozen=True)
class Security:
    service: str
    token: str | None = None
    acl: Acl | None = None
    insecure: bool = False


_security = Security("racelab", insecure=True)  # until configure(): in-process tests, tools


def configure(service: str, token_file: str | None, acl_file: str | None, insecure: bool) -> Security:
    """Load this process's token and ACL (AuthConfigError on a bad file)."""
    global _security
    if not token_file and not insecure:
        raise AuthConfigError("--token-file (or RACELAB_TOKEN_FILE) is required: this process's identity "
                              "(or --insecure / RACELAB_INSECURE=1 to run without authentication)")
    _security = Security(service, read_token(token_file) if token_file else None,
                         Acl.load(acl_file) if acl_file else None, insecure)
    if insecure and _security.acl is None:
        log.warning("INSECURE: no --acl-file; any caller may use this process's gRPC API")
    return _security


def security() -> Security:
    return _security


def server_interceptors(setting: str) -> list[grpc.aio.ServerInterceptor]:
    """The interceptor for a gRPC server of this process; ConfigError-worthy message if it may not serve."""
    if _security.acl is None:
        if not _security.insecure:
            raise AuthConfigError(f"{setting}: cannot serve gRPC without --acl-file (or RACELAB_ACL_FILE) "
                                  f"(or --insecure / RACELAB_INSECURE=1 to serve without authentication)")
        return []
    return [AuthInterceptor(_security.service, _security.acl)]


def client_interceptors() -> list:
    return bearer_interceptors(_security.token) if _security.token else []


# ---- server side -----------------------------------------------------------

def caller() -> Grant | None:
    """The identity of the call being served (None when the server runs without an ACL)."""
    return _caller.get()


def may_change_zone(zone: str) -> bool:
    """Whether the caller may change `zone` (always, on a server without an ACL)."""
    grant = _caller.get()
    return _security.acl is None if grant is None else grant.may_change(zone)


class _Throttled:
    """At most `per_second` log lines; a flood of bad calls must not become a flood of log lines."""

    def __init__(self, per_second: int = 10):
        self.per_second, self.window, self.count, self.suppressed = per_second, 0, 0, 0

    def warning(self, message: str, *args) -> None:
        now = int(time.monotonic())
        if now != self.window:
            if self.suppressed:
                log.warning("%d more denied call(s) not logged", self.suppressed)
            self.window, self.count, self.suppressed = now, 0, 0
        self.count += 1
        if self.count <= self.per_second:
            log.warning(message, *args)
        else:
            self.suppressed += 1


_denial_log = _Throttled()


def record_denial(service: str, method: str, code: grpc.StatusCode, detail: str, peer: str = "") -> None:
    DENIED.labels(service, method, code.name).inc()
    _denial_log.warning("denied %s %s%s: %s", code.name, method, f" from {peer}" if peer else "", detail)


def _bearer(metadata) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer "):].strip()
    return None


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, service: str, acl: Acl):
        self.service = service
        self.acl = acl

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        method = details.method.lstrip("/")
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler  # unknown methods stay UNIMPLEMENTED; probes stay open
        token = _bearer(details.invocation_metadata)
        grant = self.acl.identify(token) if token else None
        if grant is None:
            why = "unknown token" if token else "no credentials"
            return self._deny(handler, method, grpc.StatusCode.UNAUTHENTICATED, why)
        if not grant.may_call(method):
            return self._deny(handler, method, grpc.StatusCode.PERMISSION_DENIED,
                              f"{grant.identity} may not call {method}")
        _caller.set(grant)  # the same context runs the handler (grpc.aio.ServerInterceptor's contract)
        return handler

    def _deny(self, handler: grpc.RpcMethodHandler, method: str, code: grpc.StatusCode, detail: str):
        record_denial(self.service, method, code, detail)

        async def refuse(request, context):
            await context.abort(code, detail)

        async def refuse_stream(request, context):  # an async generator, as streaming handlers are
            await context.abort(code, detail)
            yield

        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(refuse_stream)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(refuse)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(refuse_stream)
        return grpc.unary_unary_rpc_method_handler(refuse)


# ---- client side -----------------------------------------------------------

def _with_token(details, token: str):
    metadata = grpc.aio.Metadata(*(tuple(details.metadata or ())))
    metadata.add("authorization", f"Bearer {token}")
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                      details.wait_for_ready)


class _BearerUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token: str):
        self.token = token

    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(_with_token(details, self.token), request)


class _BearerUnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, token: str):
        self.token = token

    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(_with_token(details, self.token), request)


class _BearerStreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    def __init__(self, token: str):
        self.token = token

    async def intercept_stream_unary(self, continuation, details, request_iterator):
        return await continuation(_with_token(details, self.token), request_iterator)


class _BearerStreamStream(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, token: str):
        self.token = token

    async def intercept_stream_stream(self, continuation, details, request_iterator):
        return await continuation(_with_token(details, self.token), request_iterator)


def bearer_interceptors(token: str) -> list:
    """grpc.aio client interceptors sending `token` (aio takes one interceptor per call kind)."""
    return [cls(token) for cls in (_BearerUnaryUnary, _BearerUnaryStream, _BearerStreamUnary, _BearerStreamStream)]


class _SyncBearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                  grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    def __init__(self, token: str):
        self.metadata = ("authorization", f"Bearer {token}")

    def _details(self, details):
        return details._replace(metadata=tuple(details.metadata or ()) + (self.metadata,))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


# For a channel that polls a process while it starts: one that first tried before the server listened
# otherwise waits out gRPC's reconnect back-off (1 s, then 1.6 s, ...) after the server is up.
FAST_RECONNECT = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.min_reconnect_backoff_ms", 50),
                  ("grpc.max_reconnect_backoff_ms", 100)]


def sync_channel(target: str, token: str | None, options: list[tuple[str, int]] | None = None) -> grpc.Channel:
    """A blocking channel sending `token` (tests, benchmarks, tools)."""
    ch = grpc.insecure_channel(target, options=options)
    return grpc.intercept_channel(ch, _SyncBearer(token)) if token else ch
