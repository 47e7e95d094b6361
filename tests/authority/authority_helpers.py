"""dig-like helpers for the authority tests."""

from __future__ import annotations

import dns.message
import dns.query
import dns.rdatatype

from harness.authority import AuthorityProcess


def dig(auth: AuthorityProcess, name: str, rdtype: str = "A", *, tcp: bool = False, **make) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **make)
    host, port = auth.dns
    if tcp:
        return dns.query.tcp(q, host, port=port, timeout=3)
    return dns.query.udp(q, host, port=port, timeout=3)


def answers(msg: dns.message.Message, rdtype: str = "A") -> list[str]:
    t = dns.rdatatype.from_text(rdtype)
    return [rd.to_text() for rrset in msg.answer if rrset.rdtype == t for rd in rrset]
