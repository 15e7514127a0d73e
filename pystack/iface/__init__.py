"""One network interface's layers, each in its own module, composed by :class:`pystack.stack.Stack`.

``ethernet`` (which frames are ours; the one queue of frames out), ``ipv4_address`` (our address,
subnet and gateway), ``arp``, ``ip_link`` (in place of ``ethernet`` and ``arp`` on the IP medium,
pystack.medium: bare IP packets, as a TUN carries), ``ipv4`` (routing, fragmentation, loopback, reassembly), ``icmp``
(errors both ways, echo and its fast path), ``transport`` (what IPv4 hands to TCP, UDP and any other
transport) and ``tcp`` (TCP's fast ways in and out). The IPv6 family stands beside them: ``mld`` (the
multicast groups we listen to), ``ndisc`` (neighbour discovery, addresses with DAD and SLAAC, routers),
``ip_link6`` (in place of ``ndisc``'s resolution and DAD on the IP medium), ``ipv6`` and ``icmpv6``. A
module imports only those listed before it in its family.
"""
