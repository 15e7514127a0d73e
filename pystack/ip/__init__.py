"""Protocol state of the IP layer: the ARP cache, IPv4 reassembly and the ICMP rate limiter."""
