"""The platform's configuration: one TOML file loaded into frozen attrs
records (:mod:`.model`) by :mod:`.load`, with errors that name the file, the
key and what is wrong."""

from telavox.config.load import ConfigError, load_config, load_default, parse_config
from telavox.config.model import Config

__all__ = ["Config", "ConfigError", "load_config", "load_default", "parse_config"]
