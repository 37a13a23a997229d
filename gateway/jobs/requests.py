"""A synchronous job's normalized request, kept with its record for the worker to run.

Usage::

    record.request = dump_request(submit)                 # at create, before enqueueing
    submit = load_request(record, spec, provider)         # in the worker, per attempt
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.store.store import JobRecord
from providers.base import AudioFormat, Callback, ModelSpec, Provider, SubmitRequest


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


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(StoredRequest)


def dump_request(req: SubmitRequest) -> bytes:
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
        )
    )


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
