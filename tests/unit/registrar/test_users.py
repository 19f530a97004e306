"""The user directory: HA1 values from the configuration, never a password."""

from __future__ import annotations

import attrs
from zope.interface.verify import verifyObject

from telavox.config import parse_config
from telavox.interfaces import IUserDirectory
from telavox.registrar.users import HA1_ALGORITHMS, UserDirectory
from telavox.sip.digest import ha1

PASSWORD = "s3cret-Pa55"
MD5 = ha1("1002", "pbx.example.test", "other", "MD5")
SHA256 = ha1("1002", "pbx.example.test", "other", "SHA-256")

CONFIG = f"""
[platform]
domain = "pbx.example.test"

[[users]]
extension = "1001"
password = "{PASSWORD}"
name = "Alice"
sipserver = "sip1"

[[users]]
extension = "1002"
ha1_md5 = "{MD5}"
ha1_sha256 = "{SHA256}"

[[sipservers]]
name = "sip1"
address = "udp:127.0.0.1:5070"
"""


def directory(realm: str | None = None) -> UserDirectory:
    config = parse_config(CONFIG)
    if realm is not None:
        config = attrs.evolve(config, platform=attrs.evolve(config.platform, domain=realm))
    return UserDirectory.from_config(config)


def test_provides_iuserdirectory() -> None:
    """UserDirectory provides every attribute and method of IUserDirectory."""
    assert verifyObject(IUserDirectory, directory())


def test_ha1_derived_from_password_for_each_algorithm() -> None:
    """A password gives the HA1 of MD5, SHA-256 and SHA-512-256 with realm = domain."""
    users = directory()
    assert users.realm == "pbx.example.test"
    assert "SHA-512-256" in HA1_ALGORITHMS
    for algorithm in ("MD5", "SHA-256", "SHA-512-256"):
        assert users.ha1("1001", algorithm) == ha1("1001", "pbx.example.test", PASSWORD,
                                                   algorithm)
    assert users.ha1("1001", "md5-sess") == users.ha1("1001", "MD5")
    record = users.get_user("1001")
    assert record is not None
    assert record.ha1_md5 == ha1("1001", "pbx.example.test", PASSWORD, "MD5")
    assert record.ha1_sha256 == ha1("1001", "pbx.example.test", PASSWORD, "SHA-256")


def test_precomputed_ha1_is_kept() -> None:
    """Precomputed ha1_md5/ha1_sha256 are used as given; other algorithms have none."""
    users = directory()
    assert users.ha1("1002", "MD5") == MD5
    assert users.ha1("1002", "SHA-256") == SHA256
    assert users.ha1("1002", "SHA-512-256") is None
    record = users.get_user("1002")
    assert record is not None and (record.ha1_md5, record.ha1_sha256) == (MD5, SHA256)


def test_records_carry_attributes_and_no_password() -> None:
    """User records hold name and sipserver as sorted pairs and nothing of the password."""
    users = directory()
    record = users.get_user("1001")
    assert record is not None
    assert record.display_name == "Alice"
    assert record.attributes == (("name", "Alice"), ("sipserver", "sip1"))
    assert [r.extension for r in users.records()] == ["1001", "1002"]
    for value in (*attrs.astuple(record, recurse=True), *vars(users).values()):
        assert PASSWORD not in repr(value)


def test_unknown_user_or_algorithm_is_none() -> None:
    """Unknown users and algorithms have no HA1 and no record."""
    users = directory()
    assert users.ha1("9999", "MD5") is None
    assert users.ha1("1001", "SHA-1") is None
    assert users.get_user("9999") is None


def test_realm_change_rederives() -> None:
    """A directory built for another realm derives the HA1 values for that realm."""
    users = directory("other.example")
    assert users.realm == "other.example"
    assert users.ha1("1001", "SHA-256") == ha1("1001", "other.example", PASSWORD, "SHA-256")
    assert users.ha1("1001", "SHA-256") != directory().ha1("1001", "SHA-256")
    record = users.get_user("1001")
    assert record is not None and record.realm == "other.example"
