"""tlb: where users, dial-plan targets and numbers live.

Answers "which SIP server of the pool hosts alice?" (rendezvous hashing over
the available SIP servers, with pins) and "which gateways, in order, carry
+46...?" (longest prefix match), watches the SIP servers and gateways with
OPTIONS probes, fails over and drains.  :mod:`.routing` and :mod:`.health`
are sans-IO; :mod:`.service` provides :class:`~telavox.interfaces.ITlb` and
:mod:`.http` serves the same answers as JSON to an external proxy.
"""
