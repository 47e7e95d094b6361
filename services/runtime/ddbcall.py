"""One call to DynamoDB the way every client in racelab makes it: resolve the endpoint
name through the authority (own cache, simulated TTLs), pick one address of the
answer, call that load balancer over gRPC. Outcomes are the words the metrics use.
"""

from __future__ import annotations

import random
from typing import Awaitable, Callable

import grpc

from racelab.v1 import dynamodb_pb2_grpc
from services.runtime.dnsclient import DnsError, Resolver

OK = "ok"


class LoadBalancers:
    """gRPC stubs of DynamoDB load balancers by address, one channel each, shared by callers."""

    def __init__(self, port: int, channel_factory: Callable[[str], grpc.aio.Channel] | None = None):
        self.port = port
        if channel_factory is None:
            from services.runtime.service import channel as channel_factory
        self._channel_factory = channel_factory
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, dynamodb_pb2_grpc.DynamoDBStub] = {}

    def stub(self, address: str) -> dynamodb_pb2_grpc.DynamoDBStub:
        stub = self._stubs.get(address)
        if stub is None:
            target = f"[{address}]:{self.port}" if ":" in address else f"{address}:{self.port}"
            self._channels[address] = self._channel_factory(target)
            stub = self._stubs[address] = dynamodb_pb2_grpc.DynamoDBStub(self._channels[address])
        return stub

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()
        self._stubs.clear()


async def call_dynamodb(resolver: Resolver, lbs: LoadBalancers, name: str, rng: random.Random,
                        call: Callable[[dynamodb_pb2_grpc.DynamoDBStub], Awaitable[object]]) -> tuple[str, str]:
    """Resolve `name` (A), call one of its addresses with `call(stub)`. Returns (outcome, detail):
    ok, dns_nodata, dns_nxdomain, dns_error, connect_error, timeout or error."""
    try:
        answer = await resolver.lookup(name, "A")
    except DnsError as exc:
        return exc.outcome, str(exc) + (" (cached)" if exc.cached else "")
    address = rng.choice(answer.addresses)
    try:
        await call(lbs.stub(address))
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else None
        text = f"{code.name if code else 'error'} from {address}:{lbs.port}"
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return "timeout", text
        if code is grpc.StatusCode.UNAVAILABLE:
            return "connect_error", text
        return "error", text
    return OK, ""
