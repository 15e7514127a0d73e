"""Protocol state of IPv6: reassembly, the neighbour cache, addresses (SLAAC and DAD) and what routers
advertise, with every bound in :class:`pystack.ip6.config.Ipv6Config`."""
