"""What every AGI session of a scriptserver shares: its options and providers.

Owns :class:`AgiOptions` (frozen settings) and :class:`AgiServices` (the
options with the sound library, the AstDB and the EXEC applications built
from them).  One :class:`AgiServices` is made by the
:class:`~telavox.scriptserver.runner.ScriptRunner` and handed to each
:class:`~telavox.scriptserver.session.AgiSession`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from telavox import __version__
from telavox.scriptserver.agi import AGI_BUF_LEN
from telavox.scriptserver.apps import Application, default_applications
from telavox.scriptserver.astdb import MemoryAstDB
from telavox.scriptserver.interfaces import IAstDB
from telavox.scriptserver.sounds import SoundLibrary
from telavox.sounds import SOUNDS_DIR

__all__ = ["AgiOptions", "AgiServices"]


def _positive(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, not {value!r}")


@attrs.frozen(kw_only=True)
class AgiOptions:
    """Settings of AGI sessions.

    ``sound_dirs``: folders searched for sounds, each with a sub-folder
    per language (the platform's prompts last by default).  ``record_dir``:
    where RECORD FILE puts relative names (empty: the first sound folder,
    as Asterisk's ``<datadir>/sounds``).  ``idle_timeout``: seconds a
    script may stay silent while we wait for its next command before its
    session ends and the channel is hung up.  ``max_line``: the longest
    command line accepted.  ``connect_timeout``: seconds to connect to a
    FastAGI server.  ``kill_after``: seconds an AGI program may linger after
    its session ended (after SIGHUP) before SIGKILL; also how long a FastAGI
    connection may take to close.  ``version``: ``agi_version``.
    ``music_tone``: the tone (an indications string) SET MUSIC ON plays,
    empty for none.  ``max_pending``: bytes of commands buffered ahead
    before reading from the script pauses.
    """

    sound_dirs: tuple[str, ...] = attrs.field(default=(str(SOUNDS_DIR),),
                                              converter=lambda v: tuple(str(d) for d in v))
    record_dir: str = ""
    idle_timeout: float = attrs.field(default=30.0, validator=_positive)
    max_line: int = attrs.field(default=AGI_BUF_LEN, validator=_positive)
    connect_timeout: float = attrs.field(default=5.0, validator=_positive)
    kill_after: float = attrs.field(default=5.0, validator=_positive)
    version: str = f"telavox-{__version__}"
    music_tone: str = ""
    max_pending: int = attrs.field(default=65536, validator=_positive)

    @property
    def recordings(self) -> str:
        """The folder for relative RECORD FILE names."""
        return self.record_dir or (self.sound_dirs[0] if self.sound_dirs else ".")


@attrs.define
class AgiServices:
    """The shared parts of AGI sessions (see the module docstring).
    ``applications`` maps lower-case EXEC application names to their
    implementation."""

    options: AgiOptions
    astdb: IAstDB
    applications: dict[str, Application]
    sounds: SoundLibrary

    @classmethod
    def create(cls, options: AgiOptions | None = None, astdb: IAstDB | None = None,
               applications: Mapping[str, Application] | None = None) -> AgiServices:
        """Services with defaults: an in-memory AstDB and the built-in
        applications (``applications`` are added to them, replacing those
        of the same name)."""
        options = options or AgiOptions()
        apps = default_applications()
        apps.update({name.lower(): app for name, app in (applications or {}).items()})
        return cls(options, astdb if astdb is not None else MemoryAstDB(), apps,
                   SoundLibrary(options.sound_dirs))
