"""Telavox: a telephony platform in one Twisted process."""

__version__ = "0.1.0"
