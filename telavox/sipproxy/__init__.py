"""sipproxy: the edge SIP proxy facing phones (the role Kamailio plays)."""
