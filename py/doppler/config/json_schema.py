"""JSON Schema (draft 2020-12) generated from schema-backed dataclasses (schema.py); one generator for all.

Each dataclass becomes a `$defs` entry (closed: additionalProperties false); field metadata becomes the
description, default and bounds. Rules spanning several fields (`cross_check`) are enforced by `parse` only.
"""

from __future__ import annotations

import dataclasses
import typing

from .parse import to_json
from .schema import ARRAY_BOUNDS, BOUNDS, bounds_for, has_default, is_free_object, is_union, schema_fields

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


def json_schema(cls: type, title: str) -> dict:
    """The JSON Schema of the dataclass `cls` as a document root."""
    defs: dict[str, tuple[type, dict]] = {}  # $defs name -> (class, its schema)
    root = _object_schema(cls, defs)
    return {"$schema": DRAFT, "title": title, **root, "$defs": {name: schema for name, (_, schema) in defs.items()}}


def _object_schema(cls, defs) -> dict:
    properties, required = {}, []
    for f, key, tp in schema_fields(cls):
        prop = {**_type_schema(tp, f.metadata, defs), "description": f.metadata["doc"]}
        if has_default(f):
            prop["default"] = to_json(f.default)
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
            defs[name] = (tp, {})  # placeholder first, so a class reached again while being built is not rebuilt
            defs[name] = (tp, _object_schema(tp, defs))
        elif defs[name][0] is not tp:
            raise TypeError(f"json_schema: two classes named {name} ({defs[name][0].__module__}, {tp.__module__}); "
                            "rename one")
        return {"$ref": f"#/$defs/{name}"}
    if is_union(tp):
        return {"anyOf": [_type_schema(member, meta, defs) for member in typing.get_args(tp)]}
    if typing.get_origin(tp) is tuple:
        schema = {"type": "array", "items": _type_schema(typing.get_args(tp)[0], meta, defs)}
        return schema | {ARRAY_BOUNDS[k]: v for k, v in meta.items() if k in ARRAY_BOUNDS}
    if is_free_object(tp):
        required = {"required": list(meta["required_keys"])} if "required_keys" in meta else {}
        return {"type": "object", **required}
    bounds = bounds_for(tp, meta)
    return {"type": _JSON_TYPES[tp]} | {BOUNDS[k]: list(v) if k == "choices" else v for k, v in bounds.items()}
