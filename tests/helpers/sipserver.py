"""A platform with one hosted SIP server (tproxy + mediaserver), as the call
tests run it, and what they read back from it."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

from helpers.process import PlatformProcess, free_port


def sip_server_platform(folder: Path, *, domain: str, passwords: Mapping[str, str],
                        proxy_port: int, rtp_ports: tuple[int, int], extra: str = "",
                        names: bool = False, media_address: str = "127.0.0.1",
                        platform_keys: str = "",
                        user_keys: Mapping[str, str] | None = None) -> PlatformProcess:
    """The platform (not started): sipproxy on UDP ``proxy_port``, sip1 hosted
    here with its mediaserver on ``rtp_ports`` of ``media_address``, the users of ``passwords``
    (named "User <ext>" with ``names``), tlb's HTTP API off, and any
    ``extra`` TOML sections (``platform_keys``: more lines of [platform];
    ``user_keys``: more lines of some users' [[users]] entries)."""
    more = user_keys or {}
    users = "\n".join(f'[[users]]\nextension = "{u}"\npassword = "{p}"\n'
                      + (f'name = "User {u}"\n' if names else "") + more.get(u, "")
                      for u, p in passwords.items())
    return PlatformProcess(folder, f"""
[platform]
domain = "{domain}"
data_dir = "{folder / 'var'}"
{platform_keys}

[sipproxy]
listen = ["udp:127.0.0.1:{proxy_port}"]

[tlb]
http_listen = ""
probe_listen = "udp:127.0.0.1:{free_port()}"

[mediaserver]
address = "{media_address}"
rtp_ports = [{rtp_ports[0]}, {rtp_ports[1]}]

[[sipservers]]
name = "sip1"
listen = "udp:127.0.0.1:{free_port()}"

{extra}

{users}
""")


def read_cdrs(folder: Path) -> list[dict[str, str]]:
    """The rows of the platform's CDR CSV file (none before the first flush)."""
    path = folder / "var" / "cdr.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
