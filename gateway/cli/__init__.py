"""The ``music-gateway`` command line and the first-run demo (``python -m gateway.cli``)."""

from gateway.cli.main import main

__all__ = ["main"]
