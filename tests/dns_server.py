"""A real DNS server on 127.0.0.1 (UDP) built from dnspython's own pieces: it answers from zone-file text.

Authoritative for every name it holds, it follows CNAMEs inside its data as a real server does, answers NXDOMAIN
for names it does not hold (NOERROR with no answer for a name that exists with other types), and never recurses.
"""

from __future__ import annotations

import socketserver
import threading
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import dns.zone


class DnsServer(socketserver.ThreadingUDPServer):
    daemon_threads = True

    def __init__(self, records: str) -> None:
        """``records``: zone-file lines with absolute names (ending in a dot)."""
        super().__init__(("127.0.0.1", 0), _Handler)
        self.zone = dns.zone.from_text(records, origin=dns.name.root, relativize=False, check_origin=False)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def resolver(self) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.server_address[1]
        resolver.lifetime = 2.0
        return resolver

    def __enter__(self) -> DnsServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()
        self.server_close()

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name, kind = question.name, question.rdtype
        for _ in range(8):  # CNAME chains, as far as this server holds them
            node = self.zone.get_node(name)
            if node is None:
                if not any(held.is_subdomain(name) for held in self.zone.nodes):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                return response
            found = node.get_rdataset(dns.rdataclass.IN, kind)
            if found is not None:
                response.answer.append(dns.rrset.from_rdata_list(name, found.ttl, list(found)))
                return response
            alias = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if alias is None or kind == dns.rdatatype.CNAME:
                return response
            response.answer.append(dns.rrset.from_rdata_list(name, alias.ttl, list(alias)))
            name = next(iter(alias)).target  # type: ignore[attr-defined]
        return response


class _Handler(socketserver.BaseRequestHandler):
    server: DnsServer

    def handle(self) -> None:
        data: bytes = self.request[0]
        sock: Any = self.request[1]
        query = dns.message.from_wire(data)
        sock.sendto(self.server.answer(query).to_wire(), self.client_address)
