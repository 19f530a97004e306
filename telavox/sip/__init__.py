"""The SIP stack, sans-IO: no sockets, no reactor, no clock reads.

Modules: :mod:`~telavox.sip.grammar` (lexical rules), :mod:`~telavox.sip.uri`,
:mod:`~telavox.sip.headers` and :mod:`~telavox.sip.hdrtypes` (fields),
:mod:`~telavox.sip.message` and :mod:`~telavox.sip.parser` (messages),
:mod:`~telavox.sip.transaction` (RFC 3261 §17), :mod:`~telavox.sip.dialog`
(§12), :mod:`~telavox.sip.ua` (user-agent helpers), :mod:`~telavox.sip.digest`
(authentication) and :mod:`~telavox.sip.sdp` (session descriptions).
"""
