"""Finding the external programs integration tests drive."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(program: str, package: str) -> str:
    """The path of ``program``; skips the test when it is missing, naming the
    Debian package, except in CI (``CI=true``), where a missing tool fails."""
    path = shutil.which(program)
    if path is not None:
        return path
    message = f"{program} not found: install the Debian package {package}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
