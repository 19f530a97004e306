"""Unit tests of the mediaserver's sans-IO cores (explicit time, fake sends)."""
