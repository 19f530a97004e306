"""The thin Twisted adapters: the only code that meets sockets and the reactor.

:class:`~telavox.transport.endpoint.SipEndpoint` drives the sans-IO SIP core
(:mod:`telavox.sip`) over UDP, TCP, TLS and the in-process transport
(:mod:`telavox.transport.local`).
"""
