"""The transaction layer of RFC 3261 §17, sans-IO.

Feed it messages (:meth:`TransactionLayer.receive`), transaction-user
commands (:meth:`~TransactionLayer.send_request`,
:meth:`~TransactionLayer.respond`) and time (:meth:`~TransactionLayer.fire`);
it returns actions: :class:`Send` for the transport and events for the
transaction user.  It reads no clock: :meth:`~TransactionLayer.next_deadline`
says when it next needs to be called.
"""

from telavox.sip.transaction.client import ClientInvite, ClientNonInvite, ClientTransaction
from telavox.sip.transaction.events import (
    AckIn,
    Action,
    Destination,
    RequestIn,
    ResponseIn,
    Send,
    Source,
    StrayResponse,
    Terminated,
    TimedOut,
    TransportFailed,
    client_response,
)
from telavox.sip.transaction.layer import TransactionLayer
from telavox.sip.transaction.server import ServerInvite, ServerNonInvite, ServerTransaction

__all__ = [
    "AckIn",
    "Action",
    "ClientInvite",
    "ClientNonInvite",
    "ClientTransaction",
    "Destination",
    "RequestIn",
    "ResponseIn",
    "Send",
    "ServerInvite",
    "ServerNonInvite",
    "ServerTransaction",
    "Source",
    "StrayResponse",
    "Terminated",
    "TimedOut",
    "TransactionLayer",
    "TransportFailed",
    "client_response",
]
