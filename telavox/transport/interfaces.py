"""The seam between a SIP endpoint and the component that uses it (its
transaction user)."""

from __future__ import annotations

from zope.interface import Interface


class ISipHandler(Interface):
    """What a component supplies to a :class:`~telavox.transport.endpoint.SipEndpoint`.

    Methods are called on the reactor thread and must not block.  An
    exception escaping one of them is logged and, for a request, answered
    with 500.
    """

    def handle_request(endpoint, event):
        """A new request (:class:`~telavox.sip.transaction.RequestIn`): answer it,
        now or later, with ``endpoint.respond(event.txn, response)``."""

    def handle_ack(endpoint, event):
        """An ACK that belongs to no transaction (the ACK of a 2xx,
        :class:`~telavox.sip.transaction.AckIn`)."""

    def handle_stray_response(endpoint, event):
        """A response that matched no client transaction
        (:class:`~telavox.sip.transaction.StrayResponse`)."""

    def handle_server_failure(endpoint, event):
        """A server transaction failed: no ACK came for our final response
        (:class:`~telavox.sip.transaction.TimedOut`) or the response could not
        be sent (:class:`~telavox.sip.transaction.TransportFailed`)."""
