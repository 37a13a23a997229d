"""The provider kit: what every provider package builds on.

* ``Upstream`` (``upstream.py``): one provider API over HTTP; a call answers a 2xx
  ``Answer`` (or, with ``stream``, an ``UpstreamStream`` whose body is read chunk by
  chunk) or raises from the ``ProviderError`` tree (transport failures with ``sent``,
  HTTP statuses per DESIGN.md, ``Retry-After``, credentials scrubbed from every text).
* ``UpstreamHTTP``, ``Timeouts``, ``Answer``, ``StreamedAnswer`` and the
  ``TransportError`` tree (``http.py``): the one pooled HTTP transport.
* ``retry_after`` (``retry_after.py``): the one reading of ``Retry-After``.
* ``text``, ``seconds``, ``count``, ``timeouts_from``, ``ProviderSettings`` (``env.py``):
  configuration from the environment, strict.
* ``scrub``, ``scrub_bytes`` (``scrub.py``): a credential out of upstream text.

A provider declares its credentials as ``providers.base.Credential`` data; the gateway
reads them through the registry (redaction, readiness, the first-run demo).
"""

from providers.kit.env import ProviderSettings, count, seconds, text, timeouts_from
from providers.kit.http import (
    Answer,
    ConnectError,
    ConnectTimeout,
    ProtocolError,
    ReadError,
    ReadTimeout,
    StreamedAnswer,
    Timeouts,
    TransportError,
    UpstreamHTTP,
)
from providers.kit.retry_after import retry_after
from providers.kit.scrub import scrub, scrub_bytes
from providers.kit.upstream import Upstream, UpstreamStream, json_error_text

__all__ = [
    "Answer",
    "ConnectError",
    "ConnectTimeout",
    "ProtocolError",
    "ProviderSettings",
    "ReadError",
    "ReadTimeout",
    "StreamedAnswer",
    "Timeouts",
    "TransportError",
    "Upstream",
    "UpstreamHTTP",
    "UpstreamStream",
    "count",
    "json_error_text",
    "retry_after",
    "scrub",
    "scrub_bytes",
    "seconds",
    "text",
    "timeouts_from",
]
