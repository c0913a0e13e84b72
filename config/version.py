"""calbook's version, from the installed package's metadata (``pyproject.toml``), and nowhere else.

``calbook --version`` and the OpenAPI document both read it, so they cannot disagree.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def calbook_version() -> str:
    try:
        return version("calbook")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


VERSION = calbook_version()
