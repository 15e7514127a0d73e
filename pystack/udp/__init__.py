"""UDP (RFC 768): endpoints and the port table."""
