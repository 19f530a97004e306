"""``twistd telavox``: command-line options and the root service.

Owns :class:`Options` (``--config FILE``) and :func:`makeService`.  A bad
configuration stops the start with one line naming the file, the key and the
problem (no traceback); without ``--config`` the embedded default is used.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from twisted.python import usage

from telavox.config import Config, ConfigError, load_config, load_default
from telavox.config.load import DEFAULT_NAME, default_text


class Options(usage.Options):
    """Options of ``twistd telavox``."""

    synopsis = "[--config FILE]"
    longdesc = ("Run the Telavox telephony platform. Without --config it runs on its embedded "
                "default configuration (loopback addresses, data under ./var).")
    optParameters = [
        ["config", "c", None, "Configuration file (TOML)."],
    ]

    def postOptions(self) -> None:
        path = self["config"]
        try:
            if path is None:
                self.loaded: Config = load_default()
                self.text = default_text()
                self.source = DEFAULT_NAME
            else:
                self.loaded = load_config(path)
                self.text = Path(path).read_text(encoding="utf-8")
                self.source = str(path)
        except ConfigError as e:
            raise usage.UsageError(f"invalid configuration: {e}") from None


def _reloader(path: str | None) -> Any:
    if path is None:
        return None

    def reload() -> tuple[Config, str]:
        config = load_config(path)
        return config, Path(path).read_text(encoding="utf-8")

    return reload


def makeService(options: Options) -> Any:
    """Build the platform's root service from the parsed options."""
    from twisted.internet import reactor

    from telavox.assembly import build_platform

    config = options.loaded
    data_dir = Path(config.platform.data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        sys.stderr.write(f"telavox: cannot create data_dir {str(data_dir)!r}: {e.strerror}\n")
        raise SystemExit(1) from None
    return build_platform(config, reactor, config_text=options.text,
                          config_source=options.source,
                          reload_config=_reloader(options["config"]))
