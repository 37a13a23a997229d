"""The OpenAPI document's configuration and the gateway's schema plugins.

Usage::

    app_config.openapi_config = openapi_config()
    Litestar(plugins=[..., *SCHEMA_PLUGINS])   # consulted before Litestar's own

The Struct plugins build a Struct's object schema from public pieces only: msgspec's
``inspect.type_info`` (fields, their wire names, defaults and ``Meta`` constraints),
``litestar.typing.FieldDefinition`` and the ``schema_creator`` Litestar hands to every
``OpenAPISchemaPlugin``. They give the schema Litestar's own msgspec support gives, then
change the one thing each plugin is for.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIType,
    Schema,
    SecurityScheme,
    Server,
)
from litestar.params import ParameterKwarg
from litestar.plugins import OpenAPISchemaPlugin
from litestar.types import Empty
from litestar.typing import FieldDefinition
from litestar.utils.typing import make_non_optional_union

from gateway import __version__
from gateway.api.schemas import RESPONSE_TYPES

OPENAPI_DESCRIPTION = """\
One API in front of several AI music providers, shaped like the AI Stats gateway's music
API. `POST /v1/music/generate` starts a job routed by `model`; poll
`GET /v1/music/generate/{music_id}` until `status` is `completed` or `failed`. Every
provider's native status is normalized to `queued | in_progress | completed | failed`.
"""


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Music Gateway API",
        version=__version__,
        description=OPENAPI_DESCRIPTION,
        servers=[Server(url="/", description="This gateway")],
        components=Components(
            security_schemes={
                "BearerAuth": SecurityScheme(
                    type="http", scheme="bearer", description="A gateway API key."
                )
            }
        ),
        path="/docs",
        render_plugins=[ScalarRenderPlugin()],
        use_handler_docstrings=True,
        create_examples=False,
    )


class NullableLiteralSchema(OpenAPISchemaPlugin):
    """``Literal[...] | None`` as ``oneOf: [{enum: [...]}, {type: null}]``.

    Litestar's own rendering (``type: [null, string]`` with ``null`` among the ``enum``
    values) makes openapi-python-client emit three enum classes for one field.
    """

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        inner = field_definition.inner_types or ()
        return (
            field_definition.is_optional
            and not field_definition.is_literal
            and all(t.is_literal or t.is_none_type for t in inner)
        )

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        values = FieldDefinition.from_annotation(
            make_non_optional_union(field_definition.annotation)
        )
        return Schema(
            one_of=[schema_creator.for_field_definition(values), Schema(type=OpenAPIType.NULL)]
        )


def _constraints(field_type: Any) -> dict[str, Any]:
    """A msgspec field type's ``Meta`` (title, description, examples, bounds, lengths,
    pattern) as ``ParameterKwarg`` arguments, the way Litestar reads them."""
    if isinstance(field_type, msgspec.inspect.UnionType):  # ``X | None``: X's
        arms = [t for t in field_type.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(arms) == 1:
            field_type = arms[0]
    kwargs: dict[str, Any] = {}
    if isinstance(field_type, msgspec.inspect.Metadata):
        if schema := field_type.extra_json_schema:
            kwargs["title"] = schema.get("title")
            kwargs["description"] = schema.get("description")
            if examples := schema.get("examples"):
                kwargs["examples"] = [Example(value=e) for e in examples]
            kwargs["schema_extra"] = schema.get("extra")
        field_type = field_type.type
    inspect = msgspec.inspect
    if isinstance(field_type, (inspect.IntType, inspect.FloatType)):
        kwargs |= {
            "gt": field_type.gt,
            "ge": field_type.ge,
            "lt": field_type.lt,
            "le": field_type.le,
            "multiple_of": field_type.multiple_of,
        }
    elif isinstance(
        field_type,
        (inspect.StrType, inspect.BytesType, inspect.ByteArrayType, inspect.MemoryViewType),
    ):
        kwargs["min_length"] = field_type.min_length
        kwargs["max_length"] = field_type.max_length
        if isinstance(field_type, inspect.StrType):
            kwargs["pattern"] = field_type.pattern
    elif isinstance(
        field_type, (inspect.ListType, inspect.SetType, inspect.FrozenSetType, inspect.VarTupleType)
    ):
        kwargs["min_items"] = field_type.min_length
        kwargs["max_items"] = field_type.max_length
    return {k: v for k, v in kwargs.items() if v is not None}  # None: ParameterKwarg's default


def struct_schema(field_definition: FieldDefinition, schema_creator: Any) -> Schema:
    """The component schema of a msgspec Struct, as Litestar's msgspec support makes it:
    properties by wire name, ``Meta`` constraints, defaults, required fields and a tagged
    union's tag."""
    hints = field_definition.get_type_hints(include_extras=True, resolve_generics=True)
    info: Any = msgspec.inspect.type_info(field_definition.type_)
    properties: dict[str, FieldDefinition] = {}
    for field in info.fields:
        extra: dict[str, Any] = {}
        if constraints := _constraints(field.type):
            extra["kwarg_definition"] = ParameterKwarg(**constraints)
        properties[field.encode_name] = FieldDefinition.from_annotation(
            annotation=hints[field.name],
            name=field.encode_name,
            default=Empty if field.default in (msgspec.NODEFAULT, msgspec.UNSET) else field.default,
            **extra,
        )
    required = [field.encode_name for field in info.fields if field.required]
    if info.tag_field:  # a tagged union member: its tag, a constant
        properties[info.tag_field] = FieldDefinition.from_annotation(Literal[info.tag])
        required.append(info.tag_field)
    return schema_creator.create_component_schema(  # type: ignore[no-any-return]
        field_definition, required=sorted(required), property_fields=properties
    )


class ResponseStructSchema(OpenAPISchemaPlugin):
    """Every field of a response type is required: msgspec always writes it."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return not field_definition.is_union and field_definition.annotation in RESPONSE_TYPES

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        schema = struct_schema(field_definition, schema_creator)
        schema.required = sorted(schema.properties or {})
        return schema


class ClosedStructSchema(OpenAPISchemaPlugin):
    """Inbound Structs that forbid unknown fields say so: ``additionalProperties: false``."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        t = field_definition.annotation
        return (
            not field_definition.is_union
            and isinstance(t, type)
            and issubclass(t, msgspec.Struct)
            and t.__struct_config__.forbid_unknown_fields
        )

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        schema = struct_schema(field_definition, schema_creator)
        schema.additional_properties = False
        return schema


def schema_plugins() -> list[OpenAPISchemaPlugin]:
    """Ours, in the order they are consulted (before Litestar's own)."""
    return [NullableLiteralSchema(), ResponseStructSchema(), ClosedStructSchema()]
