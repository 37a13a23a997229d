"""Object keys, content types and the obstore backend behind the artefact store.

Usage::

    key = artefact_key("mus_01H...", 0, "mp3")        # "mus_01H.../0.mp3", checked
    guess_type(key)                                   # "audio/mpeg"
    backend, presigned = open_backend(settings)       # LocalStore | S3Store
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from obstore.store import LocalStore, S3Store

from gateway.infra.audio import SPECS
from gateway.infra.settings import Settings

MAX_KEY_LENGTH = 512
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"
_KEY = re.compile(rf"^{_SEGMENT}(/{_SEGMENT})*$")
_TYPES = {
    **{spec.extension: spec.content_type for spec in SPECS.values()},
    "m4a": "audio/mp4",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "mid": "audio/midi",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
}


def check_key(key: str) -> str:
    """``key`` when it is a valid object key; ``ValueError`` otherwise (no ``..``,
    no leading slash, no empty or hidden segment)."""
    if len(key) > MAX_KEY_LENGTH or not _KEY.match(key):
        raise ValueError(f"invalid artefact key {key!r}")
    return key


def artefact_key(job_id: str, index: int, extension: str) -> str:
    """The key of a job's ``index``-th artefact: ``{job_id}/{index}.{extension}``."""
    return check_key(f"{job_id}/{index}.{extension.lstrip('.')}")


def guess_type(key: str) -> str:
    """The content type of a key's extension (``application/octet-stream`` if unknown)."""
    ext = key.rsplit(".", 1)[-1].lower() if "." in key.rsplit("/", 1)[-1] else ""
    found = _TYPES.get(ext) or mimetypes.guess_type(f"x.{ext}")[0]
    return found or "application/octet-stream"


def open_backend(settings: Settings) -> tuple[Any, bool]:
    """The obstore store ``GATEWAY_ARTEFACT_STORE`` names, and whether it presigns
    (S3) rather than the gateway serving it (a folder)."""
    location = settings.artefact_store
    if location is None or location.startswith("file://"):
        root = Path(location[len("file://") :]) if location else settings.data_dir / "artefacts"
        root.mkdir(parents=True, exist_ok=True)
        return LocalStore(root.resolve(), automatic_cleanup=True), False
    bucket, _, prefix = location[len("s3://") :].partition("/")
    env: Mapping[str, str] = settings.env
    config: dict[str, Any] = {}
    for name, option in (
        ("AWS_ACCESS_KEY_ID", "access_key_id"),
        ("AWS_SECRET_ACCESS_KEY", "secret_access_key"),
        ("AWS_SESSION_TOKEN", "session_token"),
        ("AWS_ENDPOINT_URL", "endpoint"),
        ("AWS_ENDPOINT_URL_S3", "endpoint"),
    ):
        if env.get(name):
            config[option] = env[name]
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        config["region"] = region
    client = {
        "allow_http": str(config.get("endpoint", "")).startswith("http://"),
        "connect_timeout": "5s",
        "timeout": "300s",
    }
    store = S3Store(bucket, prefix=prefix or None, config=config, client_options=client)
    return store, True
