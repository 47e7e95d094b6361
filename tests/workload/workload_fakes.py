"""Test doubles for the workload and resolver tests: a tiny authoritative DNS over UDP whose
answers a test changes at will, and a DynamoDB gRPC servicer."""

from __future__ import annotations

import asyncio

import grpc
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from racelab.v1 import dynamodb_pb2, dynamodb_pb2_grpc


class FakeDNS(asyncio.DatagramProtocol):
    """Authoritative answers from plain dicts.

    zones: apex -> (soa_ttl, soa_minimum). records: name -> {"A": ([addr...], ttl), "AAAA": ...,
    "CNAME": (target, ttl)}. modes: name -> "SERVFAIL" | "DROP". A known name without the type is
    NODATA (SOA in authority), an unknown one NXDOMAIN; CNAMEs are followed inside `records`.
    """

    def __init__(self):
        self.zones: dict[str, tuple[int, int]] = {}
        self.records: dict[str, dict] = {}
        self.modes: dict[str, str] = {}
        self.queries: list[tuple[str, str]] = []
        self.follow_cnames = True  # False: answer a CNAME alone, as for a target in another authority
        self.transport = None
        self.port = 0

    async def start(self) -> "FakeDNS":
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.transport:
            self.transport.close()

    def count(self, name: str, qtype: str | None = None) -> int:
        return sum(1 for n, t in self.queries if n == name and (qtype is None or t == qtype))

    def datagram_received(self, data, addr):
        request = dns.message.from_wire(data)
        question = request.question[0]
        qname = question.name.to_text().rstrip(".").lower()
        qtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((qname, qtype))
        if self.modes.get(qname) == "DROP":
            return
        reply = dns.message.make_response(request)
        reply.flags |= dns.flags.AA
        if self.modes.get(qname) == "SERVFAIL":
            reply.set_rcode(dns.rcode.SERVFAIL)
        else:
            self._answer(reply, qname, qtype)
        self.transport.sendto(reply.to_wire(), addr)

    def _zone(self, name: str) -> str | None:
        while True:
            if name in self.zones:
                return name
            if "." not in name:
                return None
            name = name.split(".", 1)[1]

    def _soa_rr(self, zone: str, negative: bool) -> dns.rrset.RRset:
        ttl, minimum = self.zones[zone]
        return _rrset(zone, "SOA", min(ttl, minimum) if negative else ttl,
                      f"ns-1.example. hostmaster.{zone}. 1 7200 900 1209600 {minimum}")

    def _answer(self, reply: dns.message.Message, qname: str, qtype: str) -> None:
        zone = self._zone(qname)
        if zone is None:
            reply.set_rcode(dns.rcode.REFUSED)
            return
        if qtype == "SOA" and qname == zone:
            reply.answer.append(self._soa_rr(zone, False))
            return
        name = qname
        for _ in range(8):
            recs = self.records.get(name)
            if recs is None:
                if name == qname and name != zone:
                    reply.set_rcode(dns.rcode.NXDOMAIN)
                    reply.authority.append(self._soa_rr(zone, True))
                return
            if qtype in recs:
                addrs, ttl = recs[qtype]
                if addrs:
                    reply.answer.append(_rrset(name, qtype, ttl, *addrs))
                return
            if "CNAME" in recs:
                target, ttl = recs["CNAME"]
                reply.answer.append(_rrset(name, "CNAME", ttl, target + "."))
                name = target
                if self._zone(name) is None or not self.follow_cnames:
                    return  # not followed here: the client chases it
                continue
            reply.authority.append(self._soa_rr(self._zone(name), True))  # NODATA
            return


def _rrset(name: str, rtype: str, ttl: int, *values: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(name + ".", ttl, dns.rdataclass.IN, rtype, *values)


class FakeDynamoDB(dynamodb_pb2_grpc.DynamoDBServicer):
    def __init__(self, lb_id: str = "lb-test-1", delay: float = 0.0):
        self.lb_id, self.delay, self.calls = lb_id, delay, 0

    async def GetItem(self, request, context):
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return dynamodb_pb2.GetItemResponse(found=False, lb_id=self.lb_id)

    async def PutItem(self, request, context):
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return dynamodb_pb2.PutItemResponse(item=dynamodb_pb2.Item(key=request.key, version=1), lb_id=self.lb_id)


async def start_fake_dynamodb(host: str = "127.0.0.1", servicer: FakeDynamoDB | None = None):
    server = grpc.aio.server()
    servicer = servicer or FakeDynamoDB()
    dynamodb_pb2_grpc.add_DynamoDBServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"{host}:0")
    await server.start()
    return server, servicer, port


class FakeClock:
    """Simulated seconds a test moves by hand."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
