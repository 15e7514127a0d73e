"""DHCP client (RFC 2131) and the RFC 5227 address probe it relies on; sans-I/O."""

from pystack.dhcp.client import (
    Bound, Declined, DhcpClient, DhcpDatagram, Event, Failed, Lease, LeaseLost, ProbeAddress, State,
)
from pystack.dhcp.config import DhcpConfig
from pystack.dhcp.probe import AddressProbe

__all__ = ["AddressProbe", "Bound", "Declined", "DhcpClient", "DhcpConfig", "DhcpDatagram", "Event", "Failed",
           "Lease", "LeaseLost", "ProbeAddress", "State"]
