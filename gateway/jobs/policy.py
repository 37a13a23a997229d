"""The parameter policy and routing of one create request (DESIGN.md), pure.

Usage::

    plan = make_plan(req, catalog, providers, require=False, converts=True)
    plan.spec, plan.provider, plan.submit     # what runs, and the request it is sent
    plan.notices                              # fields the model does not use (warnings)

* A field outside the schema never gets here: the decoder answers 400 ``unknown_parameter``.
* A schema field the model cannot use is dropped from what is sent and reported as a
  ``parameter_ignored`` notice, shown on every read of the job; with ``require`` (the
  request's ``provider.require_parameters``, else ``GATEWAY_REQUIRE_PARAMETERS``) it is a
  400 ``unsupported_parameter`` naming it instead.
* Values a provider would reject (lengths, ranges, requirements) and a native block another
  provider owns stay 400s naming the param (the provider's ``check`` raises them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.infra.errors import InvalidRequest
from gateway.jobs.records import native_format
from gateway.jobs.routing import (
    Diagnostics,
    ProviderRouting,
    diagnostics,
    route,
    unused_debug,
    unused_routing,
)
from gateway.store.store import Notice
from providers.base import NORMALIZED_PARAMS, ModelSpec, Provider, SubmitRequest

IGNORED = "parameter_ignored"


@dataclass
class Plan:
    spec: ModelSpec
    provider: Provider
    submit: SubmitRequest
    format: str  # what the client gets (the sink converts to it)
    notices: list[Notice] = field(default_factory=list)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)


class _Policy:
    def __init__(self, require: bool) -> None:
        self.require = require
        self.notices: list[Notice] = []

    def unused(self, param: str, message: str) -> None:
        """``param`` cannot be honoured: a 400 under ``require``, else a notice."""
        if self.require:
            raise InvalidRequest(
                message + " (provider.require_parameters is on.)",
                code="unsupported_parameter",
                param=param,
            )
        self.notices.append(Notice(code=IGNORED, param=param, message=message + " Ignored."))


def routing_of(req: Any) -> ProviderRouting | None:
    """``provider {...}``, or AI Stats' other spelling ``routing {...}`` (not both)."""
    provider, routing = getattr(req, "provider", None), getattr(req, "routing", None)
    if provider is not None and routing is not None:
        raise InvalidRequest(
            "Send the routing options once: as provider {...} or as routing {...}.",
            param="routing",
        )
    return provider if provider is not None else routing


def make_plan(
    req: Any,
    catalog: Mapping[str, ModelSpec],
    providers: Mapping[str, Provider],
    *,
    require: bool,
    converts: bool,
) -> Plan:
    """Route ``req`` by model and apply the parameter policy (see the module docstring).
    ``converts``: whether this gateway can convert an asynchronous provider's audio
    (``ogg``/``aac``), which needs its stored copy."""
    spec = catalog.get(req.model)
    if spec is None:
        raise InvalidRequest(
            f"Unknown model {req.model!r}. Valid models: {', '.join(catalog)}.",
            code="unknown_model",
            param="model",
            details=list(catalog),
        )
    routing = routing_of(req)
    if routing is not None and routing.require_parameters is not None:
        require = routing.require_parameters
    name = route([spec.provider], routing)[0]
    provider = providers[name]
    policy = _Policy(require)
    block = provider.catalog.native_block
    for other in providers.values():
        other_block = other.catalog.native_block
        if other_block != block and getattr(req, other_block, None) is not None:
            raise InvalidRequest(
                f"The {other_block!r} block applies to {other.name}/* models only; "
                f"model {spec.id} is served by {spec.provider}.",
                code="unsupported_parameter",
                param=other_block,
            )
    values = {}
    for param in NORMALIZED_PARAMS:
        value = getattr(req, param)
        if value is not None and param not in spec.supports:
            supported = ", ".join(sorted(spec.supports)) or "none of them"
            policy.unused(param, f"Model {spec.id} does not use {param!r} (it uses: {supported}).")
            value = None
        values[param] = value
    fmt = values["format"] or "mp3"
    if fmt != native_format(fmt, spec.formats) and not (provider.catalog.synchronous or converts):
        policy.unused(
            "format",
            f"Model {spec.id} gives {' or '.join(sorted(spec.formats))}; {fmt} is converted"
            " from a stored copy,"
            " which this gateway makes only where its generation worker runs (a"
            " synchronous provider configured, or GATEWAY_ARTEFACT_MIRROR=true). The job"
            " runs in mp3.",
        )
        fmt = "mp3"
    options = getattr(req, block, None)
    for name in sorted(provider.catalog.ignored_options):
        if options is not None and getattr(options, name, None) is not None:
            policy.unused(f"{block}.{name}", f"{provider.name} cannot use {block}.{name}.")
    for param in unused_routing(routing):
        policy.unused(param, f"The routing option {param} does not apply to music jobs.")
    for param in unused_debug(getattr(req, "debug", None)):
        policy.unused(param, f"{param} is not supported by this gateway.")
    for key in sorted(getattr(req, "beta", None) or {}):
        policy.unused(f"beta.{key}", f"No beta feature {key!r} exists on this gateway.")
    submit = SubmitRequest(
        model=spec,
        prompt=values["prompt"],
        lyrics=values["lyrics"],
        instrumental=values["instrumental"],
        title=values["title"],
        style=values["style"],
        duration=values["duration"],
        format=native_format(fmt, spec.formats),
        options=options,
    )
    provider.check(submit)
    return Plan(
        spec=spec,
        provider=provider,
        submit=submit,
        format=fmt,
        notices=policy.notices,
        diagnostics=diagnostics(
            getattr(req, "echo_upstream_request", None), getattr(req, "debug", None)
        ),
    )
