"""The provider instances of one gateway, read from the explicit registry.

The job layer is the only one that reaches provider packages (an import-linter contract
holds this): the API layer asks here for the providers it documents and serves.

Usage::

    providers = load_providers(settings.env)   # one instance per registered provider
"""

from __future__ import annotations

from collections.abc import Mapping

from providers.base import Provider
from providers.registry import create_providers


def load_providers(env: Mapping[str, str]) -> list[Provider]:
    """Every registered provider, configured from ``env`` (its own variable names)."""
    return create_providers(env)
