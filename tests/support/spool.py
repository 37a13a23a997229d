"""The temporary (spool) files code under test makes, recorded so a test can assert they
are closed.

Usage::

    files = SpoolFiles(monkeypatch)       # before the code makes them
    ...
    assert all(f.closed for f in files.made)
"""

from __future__ import annotations

import tempfile
from typing import Any

import pytest

__all__ = ["SpoolFiles"]


class SpoolFiles:
    """Records every ``tempfile.TemporaryFile`` made while the test runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[Any] = []
        real = tempfile.TemporaryFile

        def record(*args: Any, **kw: Any) -> Any:
            f = real(*args, **kw)
            self.made.append(f)
            return f

        monkeypatch.setattr(tempfile, "TemporaryFile", record)
