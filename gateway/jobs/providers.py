"""The provider instances of one gateway, read from the explicit registry.

The job layer is the only one that reaches provider packages (an import-linter contract
holds this): the API layer asks here for the providers it documents and serves.

Usage::

    providers = load_providers(settings.env)   # one instance per registered provider
    names = credential_names(providers)        # what logs and answers must never show
"""

from __future__ import annotations

from collections.abc import Mapping

from providers.base import Provider
from providers.registry import create_providers, secret_names


def load_providers(env: Mapping[str, str]) -> list[Provider]:
    """Every registered provider, configured from ``env`` (its own variable names)."""
    return create_providers(env)


def credential_names(providers: list[Provider]) -> tuple[str, ...]:
    """The environment names of the secret credentials of every registered provider and
    of ``providers`` (to redact, whichever providers this gateway runs)."""
    names = (*secret_names(), *(c.env for p in providers for c in p.credentials if c.secret))
    return tuple(dict.fromkeys(names))
