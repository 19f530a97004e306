"""The ``twistd telavox`` plugin.

Side-effect free: it only names :mod:`telavox.tap`, which twistd imports when
the plugin is chosen.
"""

from twisted.application.service import ServiceMaker

telavox = ServiceMaker(
    "Telavox telephony platform",
    "telavox.tap",
    "Run the telephony platform (SIP proxy, registrar, PBX, media, gateway).",
    "telavox",
)
