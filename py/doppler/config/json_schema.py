"""JSON Schema (draft 2020-12) generated from schema-backed dataclasses (schema.py); one generator for all.

Each dataclass becomes a `$defs` entry (closed: additionalProperties false); field metadata becomes the
description, default and bounds. Rules spanning several fields (`cross_check`) are enforced by `parse` only.
"""

from __future__ import annotations

import dataclasses
import typing

from .parse import to_json
from .schema import ARRAY_BOUNDS, BOUNDS, default_of, has_default, schema_fields

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


def json_schema(cls: type, title: str) -> dict:
    """The JSON Schema of the dataclass `cls` as a document root."""
    defs: dict[str, dict] = {}
    root = _object_schema(cls, defs)
    return {"$schema": DRAFT, "title": title, **root, "$defs": defs}


def _object_schema(cls, defs) -> dict:
    properties, required = {}, []
    for f, key, tp in schema_fields(cls):
        prop = {**_type_schema(tp, f.metadata, defs), "description": f.metadata["doc"]}
        if has_default(f):
            prop["default"] = to_json(default_of(f))
        else:
            required.append(key)
        properties[key] = prop
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if cls.__doc__:
        schema["description"] = cls.__doc__.strip()
    if required:
        schema["required"] = required
    return schema


def _type_schema(tp, meta, defs) -> dict:
    if dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder first, so a class reached again while being built is not rebuilt
            defs[name] = _object_schema(tp, defs)
        return {"$ref": f"#/$defs/{name}"}
    origin = typing.get_origin(tp)
    if origin is not None and origin not in (tuple, dict):
        return {"anyOf": [_type_schema(member, meta, defs) for member in typing.get_args(tp)]}
    if origin is tuple:
        schema = {"type": "array", "items": _type_schema(typing.get_args(tp)[0], meta, defs)}
        return schema | {ARRAY_BOUNDS[k]: v for k, v in meta.items() if k in ARRAY_BOUNDS}
    if tp is dict or origin is dict:
        return {"type": "object", "required": list(meta["required_keys"])} if "required_keys" in meta else {"type": "object"}
    schema = {"type": _JSON_TYPES[tp]}
    if tp is type(None):
        return schema
    return schema | {BOUNDS[k]: list(v) if k == "choices" else v for k, v in meta.items() if k in BOUNDS}
