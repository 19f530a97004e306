"""The scriptserver as a base application of the platform.

Owns :class:`ScriptServerService`: it provides
:class:`~telavox.interfaces.IScriptServer` to the SIP servers (a call to a
``[[dialplan]]`` number with ``app`` runs there) through a
:class:`~telavox.scriptserver.runner.ScriptRunner` configured from
``[scriptserver]``, with the built-in applications of
:mod:`telavox.scriptserver.builtins` registered by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from telavox.base import BaseApplication, Platform
from telavox.config.model import ScriptServerConfig
from telavox.interfaces import IScriptServer
from telavox.records import Health
from telavox.scriptserver.builtins import BUILTINS
from telavox.scriptserver.runner import ScriptRunner
from telavox.scriptserver.services import AgiOptions
from telavox.sounds import SOUNDS_DIR

__all__ = ["ScriptServerService"]


@implementer(IScriptServer)
class ScriptServerService(BaseApplication):
    """Runs the scripts of the dial plan (see the module docstring)."""

    log = Logger()
    restart_keys = ("sounds_dirs", "language", "agi_timeout", "agi_connect_timeout")

    def __init__(self, platform: Platform, section: ScriptServerConfig) -> None:
        super().__init__("scriptserver", platform, section)
        data_dir = Path(platform.config.platform.data_dir)
        folders = [str(data_dir / d) for d in section.sounds_dirs]
        options = AgiOptions(sound_dirs=(*folders, str(SOUNDS_DIR)),
                             record_dir=folders[0] if folders else str(data_dir),
                             idle_timeout=section.agi_timeout,
                             connect_timeout=section.agi_connect_timeout)
        self.language = section.language
        self.runner = ScriptRunner(platform.reactor, options=options)
        for name, script in BUILTINS.items():
            self.runner.register(name, script)
        self.runs = 0
        platform.provide(IScriptServer, self)

    def run(self, script: str, channel: Any, args: Any = ()) -> defer.Deferred[None]:
        """IScriptServer: run ``script`` on ``channel`` (never fails)."""
        self.runs += 1
        channel.language = self.language
        return self.runner.run(script, channel, args)

    def startService(self) -> None:
        super().startService()
        self.log.info("scriptserver: {count} built-in scripts ({names}); sounds in {dirs}",
                      count=len(BUILTINS), names=", ".join(sorted(BUILTINS)),
                      dirs=", ".join(self.runner.services.options.sound_dirs))

    def health(self) -> Health:
        return Health.ok() if self.running else Health.down("not running")

    def stats(self) -> Mapping[str, float]:
        return {"runs": self.runs, "running": self.runner.running}
