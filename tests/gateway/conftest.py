"""Fixtures of the gateway tests: a webhook receiver served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.receiver import Receiver
from tests.support.servers import serve


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    app = Receiver()
    with serve(app) as base_url:
        app.base = base_url
        yield app
