"""The signed download route of stored artefacts: ``GET``/``HEAD /v1/artefacts/{key}``.

``?exp=<unix seconds>&sig=<hex HMAC-SHA256>`` authorizes the request (no API key;
``gateway/store/signing.py`` says what is signed). A tampered or missing signature is 403
``invalid_signature``, an expired URL 403 ``url_expired``, an unknown object 404.

One ``Range`` is honoured (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``): 206 with
``Content-Range``; a range starting past the end is 416 with ``Content-Range: bytes
*/{size}``. A malformed or multi-range header is ignored (the whole object, 200), as
RFC 9110 allows. The body is streamed from the store chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import Request, get, head
from litestar.datastructures import State
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
)
from litestar.params import HeaderParameter, PathParameter, QueryParameter
from litestar.response import File, Response, Stream

from gateway.api.errors import INTERNAL_ERROR_DOC, error_spec
from gateway.infra.audio import CONTENT_TYPES
from gateway.infra.errors import NotFound, RangeNotSatisfiable
from gateway.store.artefacts import ROUTE_PREFIX, ArtefactNotFound, ArtefactStore, check_key
from gateway.store.signing import EXPIRES_PARAM, SIGNATURE_PARAM

ArtefactKey = Annotated[
    str,
    PathParameter(description="The artefact's key, e.g. `mus_01H.../0.mp3`.", max_length=600),
]
Expires = Annotated[
    str | None,
    QueryParameter(
        name=EXPIRES_PARAM,
        required=False,
        description="Expiry of the signed URL (unix seconds), as issued.",
    ),
]
Signature = Annotated[
    str | None,
    QueryParameter(
        name=SIGNATURE_PARAM,
        required=False,
        description="HMAC-SHA256 signature of the URL (hex), as issued.",
    ),
]
RangeHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Range",
        required=False,
        description="One byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n` (206).",
    ),
]

_BINARY = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))
_MEDIA = {**{ct: _BINARY for ct in CONTENT_TYPES.values()}, "application/octet-stream": _BINARY}


def _header(text: str, kind: OpenAPIType = OpenAPIType.STRING) -> OpenAPIHeader:
    return OpenAPIHeader(schema=Schema(type=kind), description=text)


_HEADERS = {
    "Accept-Ranges": _header("Always `bytes`."),
    "Content-Length": _header("Bytes in this answer.", OpenAPIType.INTEGER),
}
_RANGE_HEADERS = {**_HEADERS, "Content-Range": _header("`bytes a-b/size`.")}


@dataclass
class DownloadOperation(Operation):
    """The download's answers as documented: the stored bytes, in the artefact's own
    content type (the types of the public formats are listed; any stored type may come)."""

    def __post_init__(self) -> None:
        responses = dict(self.responses or {})
        responses["200"] = OpenAPIResponse(
            description="The whole artefact.", headers=_HEADERS, content=_MEDIA
        )
        responses["206"] = OpenAPIResponse(
            description="The requested byte range.", headers=_RANGE_HEADERS, content=_MEDIA
        )
        self.responses = responses


@dataclass
class HeadOperation(Operation):
    """The HEAD's answers as documented: the GET's headers, no body."""

    def __post_init__(self) -> None:
        responses = dict(self.responses or {})
        responses["200"] = OpenAPIResponse(description="As GET, no body.", headers=_HEADERS)
        responses["206"] = OpenAPIResponse(
            description="As GET with Range, no body.", headers=_RANGE_HEADERS
        )
        self.responses = responses


_RESPONSES = {
    400: error_spec("Malformed request (validation_error)."),
    403: error_spec("Signature invalid (invalid_signature) or URL expired (url_expired)."),
    404: error_spec("No such artefact."),
    416: error_spec("Range not satisfiable (see Content-Range)."),
    **INTERNAL_ERROR_DOC,
}
_PATH = ROUTE_PREFIX + "/{key:path}"
_PUBLIC = {"exclude_from_auth": True}


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range of a ``Range`` header as ``(start, end)`` (end exclusive);
    None to send the whole object (no header, or one to ignore: malformed, another unit,
    several ranges). ``RangeNotSatisfiable`` when it starts past the end."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:  # bytes=-n: the last n bytes
        if not last:
            return None
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - n), size
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(int(last) + 1, size) if last else size


async def _authorized(request: Request, key: str, exp: str | None, sig: str | None) -> str:
    store: ArtefactStore = request.app.state.artefacts
    key = key.lstrip("/")
    await store.verify(key, exp, sig)  # 403 before anything else is revealed
    try:
        return check_key(key)
    except ValueError:
        raise NotFound(f"No artefact {key!r}.") from None


async def _plan(
    request: Request, key: str, exp: str | None, sig: str | None, range_: str | None
) -> tuple[str, int, str, tuple[int, int] | None]:
    key = await _authorized(request, key, exp, sig)
    store: ArtefactStore = request.app.state.artefacts
    info = await store.head(key)
    if info is None:
        raise NotFound(f"No artefact {key!r}.")
    return key, info.size, info.content_type, parse_range(range_, info.size)


def _headers(size: int, part: tuple[int, int] | None) -> dict[str, str]:
    if part is None:
        return {"Accept-Ranges": "bytes", "Content-Length": str(size)}
    start, end = part
    return {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start),
        "Content-Range": f"bytes {start}-{end - 1}/{size}",
    }


@get(
    _PATH,
    operation_id="downloadArtefact",
    operation_class=DownloadOperation,
    summary="Download a stored artefact (signed URL)",
    tags=["Artefacts"],
    opt=_PUBLIC,
    responses=_RESPONSES,
)
async def download_artefact(
    key: ArtefactKey,
    request: Request[None, None, State],
    exp: Expires = None,
    sig: Signature = None,
    range_: RangeHeader = None,
) -> Stream | File:
    """The artefact's bytes, for an unexpired signed URL as found in a job's
    ``audio_url``. No API key: the URL is the authorization. One byte range may be
    asked for with ``Range`` (206)."""
    key, size, content_type, part = await _plan(request, key, exp, sig, range_)
    store: ArtefactStore = request.app.state.artefacts
    path = store.local_path(key) if part is None else None
    if path is not None:  # a whole file from a folder: the server's file path, no copies
        headers = {k: v for k, v in _headers(size, part).items() if k != "Content-Length"}
        return File(
            path, media_type=content_type, content_disposition_type="inline", headers=headers
        )
    try:
        opened = await store.open(key, *(part or (None, None)))
    except ArtefactNotFound:
        raise NotFound(f"No artefact {key!r}.") from None
    return Stream(
        opened.chunks,
        status_code=200 if part is None else 206,
        media_type=content_type,
        headers=_headers(size, part),
    )


@head(
    _PATH,
    operation_id="headArtefact",
    operation_class=HeadOperation,
    summary="Size and type of a stored artefact (signed URL)",
    tags=["Artefacts"],
    opt=_PUBLIC,
    responses=_RESPONSES,
)
async def head_artefact(
    key: ArtefactKey,
    request: Request[None, None, State],
    exp: Expires = None,
    sig: Signature = None,
    range_: RangeHeader = None,
) -> Response[None]:
    """The headers a ``GET`` of the same URL would answer, without the body."""
    _, size, content_type, part = await _plan(request, key, exp, sig, range_)
    return Response(
        b"",  # (not None: Litestar would try to serialize None as the audio type)
        status_code=200 if part is None else 206,
        media_type=content_type,
        headers=_headers(size, part),
    )


DOWNLOAD_HANDLERS = [download_artefact, head_artefact]
