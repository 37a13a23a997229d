"""A synchronous job's normalized request, kept with its record for the worker to run.

Usage::

    record.request = dump_request(submit)                 # at create, before enqueueing
    submit = load_request(record, spec, provider)         # in the worker, per attempt
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.jobs.public import DebugInfo, UpstreamRequest, UpstreamResponse
from gateway.jobs.routing import Diagnostics
from gateway.store.store import JobRecord
from providers.base import AudioFormat, Callback, ModelSpec, Provider, SubmitRequest
from providers.diagnostics import Exchange


class StoredRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``SubmitRequest`` without its model (the record names it); the native block as
    plain data, converted back to the provider's options type when loaded."""

    prompt: str | None = None
    lyrics: str | None = None
    instrumental: bool | None = None
    title: str | None = None
    style: str | None = None
    duration: int | None = None
    format: AudioFormat = "mp3"
    options: dict[str, Any] | None = None
    callback: Callback | None = None
    diagnostics: Diagnostics | None = None  # the create's answer shows the upstream call


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(StoredRequest)


def dump_request(req: SubmitRequest, diag: Diagnostics | None = None) -> bytes:
    options = msgspec.to_builtins(req.options) if req.options is not None else None
    return _encoder.encode(
        StoredRequest(
            prompt=req.prompt,
            lyrics=req.lyrics,
            instrumental=req.instrumental,
            title=req.title,
            style=req.style,
            duration=req.duration,
            format=req.format,
            options=options,
            callback=req.callback,
            diagnostics=diag if diag is not None and diag.wanted else None,
        )
    )


def load_diagnostics(record: JobRecord) -> Diagnostics | None:
    """What of the upstream call the create asked to see (None: nothing)."""
    if record.request is None:
        return None
    return _decoder.decode(record.request).diagnostics


_debug_encoder = msgspec.json.Encoder()


def debug_info(
    exchanges: list[Exchange], wanted: Diagnostics, token: str | None = None
) -> bytes | None:
    """The last upstream exchange as ``DebugInfo`` JSON: what ``wanted`` asks for, with
    the job's callback token redacted (the provider's key already is)."""
    if not exchanges or not wanted.wanted:
        return None
    last = exchanges[-1]
    info = DebugInfo(
        upstream_request=UpstreamRequest(
            method=last.request.method, url=last.request.url, body=last.request.body
        )
        if wanted.request
        else None,
        upstream_response=UpstreamResponse(
            status=last.response.status,
            content_type=last.response.content_type,
            body=last.response.body,
        )
        if wanted.response
        else None,
    )
    return scrub_tokens(_debug_encoder.encode(info), token)


def load_request(record: JobRecord, spec: ModelSpec, provider: Provider) -> SubmitRequest:
    assert record.request is not None
    stored = _decoder.decode(record.request)
    options = None
    if stored.options is not None:
        options = msgspec.convert(stored.options, provider.catalog.options_type)
    return SubmitRequest(
        model=spec,
        prompt=stored.prompt,
        lyrics=stored.lyrics,
        instrumental=stored.instrumental,
        title=stored.title,
        style=stored.style,
        duration=stored.duration,
        format=stored.format,
        options=options,
        callback=stored.callback,
    )


def scrub_tokens(raw: bytes, *tokens: str | None) -> bytes:
    """``raw`` without the gateway's own secrets in it: the per-job callback token a
    provider is sent in its callback URL."""
    for token in tokens:
        if token:
            raw = raw.replace(token.encode(), b"[redacted]")
    return raw
