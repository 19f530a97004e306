"""The call model of a back-to-back user agent, shared by tproxy and the
gateway: call legs (:mod:`telavox.b2bua.leg`), each one SIP dialog, that
report to and are commanded by the call owning them."""

from telavox.b2bua.leg import (
    SDP,
    IncomingLeg,
    LegHost,
    LegListener,
    LegState,
    OutgoingLeg,
)

__all__ = ["SDP", "IncomingLeg", "LegHost", "LegListener", "LegState", "OutgoingLeg"]
