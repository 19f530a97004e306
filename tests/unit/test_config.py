"""The configuration loader and the shipped configurations."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from telavox.config import ConfigError, load_config, load_default, parse_config
from telavox.config.model import Config
from telavox.transport.address import ListenAddress

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "etc" / "telavox.example.toml"


def test_embedded_default_is_loopback_only() -> None:
    """The embedded default loads and listens on loopback addresses only."""
    config = load_default()
    assert config.sipproxy.listen
    assert all(a.host.startswith("127.") or a.host == "::1" for a in config.sipproxy.listen)


def test_example_config_loads_and_documents_every_key() -> None:
    """The example file parses and names every key of every section."""
    config = load_config(EXAMPLE)
    text = EXAMPLE.read_text()
    for section in attrs.fields(Config):
        value = getattr(config, section.name)
        if isinstance(value, tuple):  # an array of tables: [[name]]
            assert f"[[{section.name}]]" in text, section.name
            assert value, f"the example has no [[{section.name}]]"
            record = value[0].__class__
        else:
            assert f"[{section.name}]" in text, section.name
            record = value.__class__
        for field in attrs.fields(record):
            nested = getattr(value[0] if isinstance(value, tuple) else value, field.name)
            if (isinstance(nested, tuple) and nested and attrs.has(nested[0].__class__)
                    and not isinstance(nested[0], ListenAddress)):
                # an array of tables inside one: [[section.field]]
                assert f"[[{section.name}.{field.name}]]" in text
                for inner in attrs.fields(nested[0].__class__):
                    assert f"\n{inner.name} = " in text, f"{section.name}.{field.name}." \
                                                         f"{inner.name}"
                continue
            assert f"\n{field.name} = " in text, f"{section.name}.{field.name}"


@pytest.mark.parametrize(("text", "key", "fragment"), [
    ("[platform]\ndomain = 'bad domain'", "platform.domain", "not a valid domain"),
    ("[sip]\nt1 = 0", "sip.t1", "between"),
    ("[sip]\nt2 = true", "sip.t2", "must be a number"),
    ("[sip]\nmax_message_size = 1.5", "sip.max_message_size", "integer"),
    ("[sipproxy]\nlisten = 5060", "sipproxy.listen", "array"),
    ("[sipproxy]\nlisten = ['sctp:127.0.0.1:5060']", "sipproxy.listen[0]", "udp, tcp, tls"),
    ("[sipproxy]\nlisten = ['udp:127.0.0.1:5060', 'udp:127.0.0.1:5060']", "sipproxy.listen",
     "twice"),
    ("[sipproxy]\nlisten = ['udp:0.0.0.0:5060']", "sipproxy.listen", "advertise"),
    ("[sipproxy]\nlisten = ['udp:pbx.example.test:5060']", "sipproxy.listen[0]",
     "IP address"),
    ("[sipproxy]\nlisten = []", "sipproxy.listen", "at least one"),
    ("[sipproxy]\nlistn = []", "sipproxy.listn", "unknown key"),
    ("[[gateways]]\nname = 'gw'\nlisten = 'udp:127.0.0.1:5090'\n[[gateways.trunks]]\n"
     "name = 'a'\naddress = 'sip:127.0.0.1'\n", "gateways[0].carrier_listen", "needed"),
    ("[[gateways]]\nname = 'gw'\nlisten = 'udp:127.0.0.1:5090'\n"
     "carrier_listen = 'udp:127.0.0.1:5091'\n", "gateways[0].trunks", "needs a trunk"),
    ("[[gateways]]\nname = 'gw'\nlisten = 'udp:127.0.0.1:5090'\n"
     "carrier_listen = 'udp:127.0.0.1:5091'\n[[gateways.trunks]]\nname = 'a'\n"
     "address = 'sip:1001@127.0.0.1'\n", "gateways[0].trunks[0].address", "without a user"),
    ("[[gateways]]\nname = 'gw'\nlisten = 'udp:127.0.0.1:5090'\n"
     "carrier_listen = 'udp:127.0.0.1:5091'\n[[gateways.trunks]]\nname = 'a'\n"
     "address = 'sip:127.0.0.1'\nregister = true\n", "gateways[0].trunks[0].register",
     "username and password"),
    ("[[gateways]]\nname = 'gw'\nlisten = 'udp:127.0.0.1:5090'\n"
     "carrier_listen = 'udp:127.0.0.1:5091'\n[[gateways.trunks]]\nname = 'a'\n"
     "address = 'sip:127.0.0.1'\nnumber_format = 'weird'\n",
     "gateways[0].trunks[0].number_format", "one of"),
    ("[[gateways]]\nname = 'gw'\nlisten = 'udp:127.0.0.1:5090'\n"
     "carrier_listen = 'udp:127.0.0.1:5091'\n[[gateways.trunks]]\nname = 'a'\n"
     "address = 'sip:127.0.0.1:5061;transport=tls'\n", "gateways[0].trunks[0].address",
     "no tls carrier_listen"),
    ("[[gateways]]\nname = 'gw'\nlisten = 'udp:127.0.0.1:5090'\n"
     "carrier_listen = ['udp:127.0.0.1:5091', 'udp:127.0.0.1:5092']\n[[gateways.trunks]]\n"
     "name = 'a'\naddress = 'sip:127.0.0.1'\n", "gateways[0].carrier_listen",
     "one address per transport"),
    ("[[dids]]\nnumber = '+46812345600'\ntarget = '999'\n", "dids[0].target",
     "no user"),
    ("[[dids]]\nnumber = '0812345600'\ntarget = '999'\n", "dids[0].number", "E.164"),
    ("[platform]\ndns_servers = ['dns.example.test']", "platform.dns_servers",
     "not an IP address"),
    ("[platform]\ndns_servers = ['127.0.0.1:99999']", "platform.dns_servers", "port"),
    ("[tls]\ncert_file = '/nonexistent.pem'", "tls.cert_file", "no such file"),
    ("[sipproxy]\nlisten = ['tls:127.0.0.1:5061']", "tls.cert_file", "needs"),
    ("platform = 3", "platform", "table"),
])
def test_errors_name_key_and_problem(text: str, key: str, fragment: str) -> None:
    """Each invalid value is reported with the file, the dotted key and the problem."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, "my.toml")
    error = info.value
    assert error.source == "my.toml"
    assert error.key == key
    assert fragment in error.problem
    assert str(error).startswith(f"my.toml: {key}: ")


def test_advertised_address() -> None:
    """A listen entry may carry the address peers should use."""
    config = parse_config("[sipproxy]\nlisten = ['udp:0.0.0.0:5060 advertise 203.0.113.5']")
    (address,) = config.sipproxy.listen
    assert (address.via_host, address.via_port) == ("203.0.113.5", 5060)


def test_unreadable_file(tmp_path: Path) -> None:
    """A missing file is a ConfigError naming it, not a traceback."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_gateway_carrier_side_on_several_transports() -> None:
    """carrier_listen takes one address (a string) or one per transport; a
    TLS trunk needs a TLS one."""
    base = ("[[gateways]]\nname = 'gw'\nlisten = 'udp:127.0.0.1:5090'\n"
            "carrier_listen = {listen}\n[[gateways.trunks]]\nname = 'a'\n"
            "address = 'sip:127.0.0.1:5061;transport=tls'\n")
    config = parse_config(base.format(listen="['udp:127.0.0.1:5091', 'tls:127.0.0.1:5092']"))
    [gateway] = config.gateways
    assert [str(a) for a in gateway.carrier_listen] == ["udp:127.0.0.1:5091",
                                                          "tls:127.0.0.1:5092"]
    single = parse_config(base.format(listen="'tls:127.0.0.1:5092'"))
    assert [a.transport for a in single.gateways[0].carrier_listen] == ["tls"]
