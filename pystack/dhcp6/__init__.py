"""DHCPv6 client (RFC 8415), stateful and stateless; sans-I/O, with its glue to a stack in
:mod:`pystack.dhcp6.host`."""

from pystack.dhcp6.client import (
    Advertised, Declined, Dhcp6Client, Dhcp6Datagram, Event, Informed, Leased, LeaseEnded, Mode, Released, State,
)
from pystack.dhcp6.config import Dhcp6Config, Retransmission

__all__ = ["Advertised", "Declined", "Dhcp6Client", "Dhcp6Config", "Dhcp6Datagram", "Event", "Informed",
           "LeaseEnded", "Leased", "Mode", "Released", "Retransmission", "State"]
