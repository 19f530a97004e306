"""The seams inside the scriptserver that another provider may fill."""

from __future__ import annotations

from zope.interface import Interface

__all__ = ["IAstDB"]


class IAstDB(Interface):
    """Script data by family and key (Asterisk's AstDB), used by the
    DATABASE commands.  Keys are ``/family/key`` paths.  Every method
    returns a Deferred, so that a provider over
    :class:`~telavox.interfaces.IStore`'s ``kv_*`` methods (same family and
    key) can stand in for the in-memory one."""

    def get(family, key):
        """Fires with the str value of ``family``/``key``, or None."""

    def put(family, key, value):
        """Sets ``family``/``key`` to the str ``value``; fires with None."""

    def delete(family, key):
        """Removes ``family``/``key``; fires with True when it existed."""

    def deltree(family, keytree=""):
        """Removes every key of ``family`` (or only ``keytree`` and the keys
        under ``keytree/``); fires with the number removed."""
