"""AI Stats' routing and diagnostic options, and which provider serves a request (pure).

Usage::

    names = route(["suno"], req.provider)      # the allowed providers, in preference order
    ignored = unused_routing(req.provider)     # set options that cannot apply here

``only`` keeps the named providers, ``ignore`` drops them, ``order`` puts them first
(others keep their place after). Names match case-insensitively and without ``-``/``_``
(AI Stats writes ``eleven-labs``). A model no allowed provider serves is a 400
(``param: provider``). Today every model has one provider; ``route`` takes the list a
model served by several would give, and ``allow_fallbacks`` then lets the next one run.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from gateway.infra.errors import InvalidRequest

Names = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=64)]],
    msgspec.Meta(max_length=32),
]


class MaxPrice(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    prompt: float | None = None
    completion: float | None = None
    image: float | None = None
    audio: float | None = None
    request: float | None = None


class ProviderRouting(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """AI Stats' ``provider {...}`` routing options (OpenRouter's names).

    Honoured: ``only``, ``ignore``, ``order``, ``allow_fallbacks`` and
    ``require_parameters`` (a field the model cannot use is a 400 instead of a warning).
    Accepted and reported in ``warnings`` when set: the rest, which no music provider here
    can act on (regions, data policies, prices, throughput, sorting)."""

    order: Names | None = None
    only: Names | None = None
    ignore: Names | None = None
    allow_fallbacks: bool | None = None
    allowFallbacks: bool | None = None
    require_parameters: bool | None = None
    include_alpha: bool | None = None
    required_execution_region: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    required_data_region: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    require_zero_data_retention: bool | None = None
    zdr: bool | None = None
    data_collection: Literal["allow", "deny"] | None = None
    quantizations: Names | None = None
    sort: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    max_price: MaxPrice | None = None
    preferred_min_throughput: float | None = None
    preferred_max_latency: float | None = None
    diagnostics: bool | None = None
    return_diagnostics: bool | None = None
    mode: Annotated[str, msgspec.Meta(max_length=64)] | None = None


#: The routing options the gateway acts on; any other one set is reported as ignored.
HONOURED = frozenset({"order", "only", "ignore", "allow_fallbacks", "allowFallbacks"})
POLICY = frozenset({"require_parameters"})


class DebugOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """AI Stats' ``debug {...}``: what the create's answer echoes of the upstream call."""

    enabled: bool | None = None
    echo_upstream_body: bool | None = None
    return_upstream_request: bool | None = None
    returnUpstreamRequest: bool | None = None
    return_upstream_response: bool | None = None
    returnUpstreamResponse: bool | None = None
    trace: bool | None = None
    trace_level: Literal["summary", "full"] | None = None


class Diagnostics(msgspec.Struct, frozen=True, kw_only=True):
    """What the create's answer carries of the upstream exchange."""

    request: bool = False
    response: bool = False

    @property
    def wanted(self) -> bool:
        return self.request or self.response


def diagnostics(echo_upstream_request: bool | None, debug: DebugOptions | None) -> Diagnostics:
    d = debug or DebugOptions()
    return Diagnostics(
        request=bool(
            echo_upstream_request
            or d.return_upstream_request
            or d.returnUpstreamRequest
            or d.echo_upstream_body
        ),
        response=bool(d.return_upstream_response or d.returnUpstreamResponse),
    )


def unused_debug(debug: DebugOptions | None) -> list[str]:
    """``debug`` options set that the gateway does not act on (reported as ignored)."""
    if debug is None:
        return []
    return [f"debug.{n}" for n in ("trace", "trace_level") if getattr(debug, n) is not None]


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


def route(candidates: list[str], routing: ProviderRouting | None) -> list[str]:
    """The candidates ``routing`` allows, in its preferred order (400 when none is)."""
    if routing is None:
        return list(candidates)
    allowed = list(candidates)
    if routing.only is not None:
        only = {_norm(n) for n in routing.only}
        allowed = [c for c in allowed if _norm(c) in only]
    if routing.ignore:
        ignore = {_norm(n) for n in routing.ignore}
        allowed = [c for c in allowed if _norm(c) not in ignore]
    if not allowed:
        served = ", ".join(candidates)
        raise InvalidRequest(
            f"No allowed provider serves this model: it is served by {served}, and "
            "provider.only / provider.ignore exclude it.",
            code="validation_error",
            param="provider",
            reason="no_allowed_provider",
        )
    if routing.order:
        rank = {_norm(n): i for i, n in enumerate(routing.order)}
        allowed.sort(key=lambda c: rank.get(_norm(c), len(rank)))  # stable: others keep place
    if routing.allow_fallbacks is False or routing.allowFallbacks is False:
        allowed = allowed[:1]
    return allowed


def unused_routing(routing: ProviderRouting | None) -> list[str]:
    """Routing options set that cannot apply to a music request (``provider.<name>``)."""
    if routing is None:
        return []
    return [
        f"provider.{name}"
        for name in routing.__struct_fields__
        if name not in HONOURED and name not in POLICY and getattr(routing, name) is not None
    ]
