"""The scriptserver as a base application of the platform.

Owns :class:`ScriptServerService`: it provides
:class:`~telavox.interfaces.IScriptServer` to the SIP servers (a call to a
``[[dialplan]]`` number with ``app`` runs there) through a
:class:`~telavox.scriptserver.runner.ScriptRunner` configured from
``[scriptserver]``, with the built-in applications of
:mod:`telavox.scriptserver.builtins` registered by name.  It also owns the
voicemail boxes (:attr:`ScriptServerService.mailboxes`, a
:class:`~telavox.scriptserver.mailbox.MailboxStore` under
``<data_dir>/voicemail``) and gives them, with a lookup of the configured
users (refreshed by :meth:`~ScriptServerService.config_changed`), to the
``voicemail``/``voicemailmain`` scripts and the EXEC applications
``VoiceMail``/``VoiceMailMain``; it provides
:class:`~telavox.interfaces.IMailboxes` over them
(:attr:`ScriptServerService.indicator`) for the SIP servers' MWI.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from telavox.base import BaseApplication, Platform
from telavox.config.model import IvrConfig, ScriptServerConfig, UserConfig
from telavox.interfaces import IMailboxes, IScriptServer
from telavox.records import Health
from telavox.scriptserver.apps import voicemail_applications
from telavox.scriptserver.astdb import StoreAstDB
from telavox.scriptserver.builtins import make_builtins
from telavox.scriptserver.mailbox import MailboxIndicator, MailboxStore
from telavox.scriptserver.runner import ScriptRunner
from telavox.scriptserver.services import AgiOptions
from telavox.scriptserver.voicemail import VoicemailContext
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
        self._users: dict[str, UserConfig] = {}
        self._take_users(platform.config)
        self.mailboxes = MailboxStore(data_dir / "voicemail", clock=platform.reactor.seconds)
        """The voicemail boxes."""
        self.indicator = MailboxIndicator(self.mailboxes)
        """IMailboxes over :attr:`mailboxes` (the SIP servers' MWI subscribe to it)."""
        self.mailboxes.on_change = self.indicator.changed
        self.voicemail = VoicemailContext(self.mailboxes, self.user)
        self.runner = ScriptRunner(platform.reactor, options=options,
                                   astdb=StoreAstDB(platform.store),
                                   applications=voicemail_applications(self.voicemail))
        self.builtins = make_builtins(self.voicemail, self.menu, lambda: tuple(self._users))
        for name, script in self.builtins.items():
            self.runner.register(name, script)
        self.runs = 0
        platform.provide(IScriptServer, self)
        platform.provide(IMailboxes, self.indicator)

    def run(self, script: str, channel: Any, args: Any = ()) -> defer.Deferred[None]:
        """IScriptServer: run ``script`` on ``channel`` (never fails)."""
        self.runs += 1
        channel.language = self.language
        return self.runner.run(script, channel, args)

    def user(self, extension: str) -> UserConfig | None:
        """The configured user ``extension`` (whose voicemail box it is), or None."""
        return self._users.get(extension)

    def menu(self, name: str) -> IvrConfig | None:
        """The ``[[ivr]]`` menu ``name``, or None."""
        return self._menus.get(name)

    def _take_users(self, config: Any) -> None:
        self._users = {user.extension: user for user in config.users}
        self._menus: dict[str, IvrConfig] = {menu.name: menu for menu in config.ivr}

    def config_changed(self, config: Any) -> None:
        """The configuration was reloaded: take its ``[[users]]`` (voicemail
        boxes and PINs) and ``[[ivr]]`` menus."""
        self._take_users(config)

    def startService(self) -> None:
        super().startService()
        self.log.info("scriptserver: {count} built-in scripts ({names}); sounds in {dirs}",
                      count=len(self.builtins), names=", ".join(sorted(self.builtins)),
                      dirs=", ".join(self.runner.services.options.sound_dirs))

    def health(self) -> Health:
        return Health.ok() if self.running else Health.down("not running")

    def stats(self) -> Mapping[str, float]:
        return {"runs": self.runs, "running": self.runner.running}
