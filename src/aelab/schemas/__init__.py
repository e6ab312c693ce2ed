"""The JSON Schemas (draft 2020-12) of every verb's JSON output, shipped as package data.

One file per verb, `<verb>.schema.json`, whose `$id` is `urn:aelab:schema:<verb>`; a schema may refer to
another verb's by that id (`inspect`'s `doctor` key is a `doctor` document). docs/json.md explains every key.

    from aelab import schemas
    schemas.load("inspect")                 # the schema, a dict
    schemas.validate("inspect", document)   # raises jsonschema.ValidationError when it does not match

A documented public module (docs/json.md).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from aelab.errors import UsageError

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

SUFFIX = ".schema.json"


def verbs() -> list[str]:
    """The verbs that have a schema, sorted."""
    return sorted(p.name[: -len(SUFFIX)] for p in resources.files(__name__).iterdir() if p.name.endswith(SUFFIX))


@cache
def _load(verb: str) -> str:
    return resources.files(__name__).joinpath(verb + SUFFIX).read_text(encoding="utf-8")


def load(verb: str) -> dict[str, Any]:
    """The JSON Schema of `verb`'s JSON output (a fresh dict); a UsageError for a verb with no schema."""
    known = verbs()
    if verb not in known:
        raise UsageError(f"no JSON schema for {verb!r}; schemas exist for {', '.join(known)}")
    schema: dict[str, Any] = json.loads(_load(verb))
    return schema


@cache
def validator(verb: str) -> Validator:
    """A draft 2020-12 validator of `verb`'s output that resolves references to the other verbs' schemas
    (checked against the metaschema once; cached: a validator is immutable)."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    registry: Registry[Any] = Registry().with_resources(
        (f"urn:aelab:schema:{name}", Resource.from_contents(load(name))) for name in verbs())
    schema = load(verb)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry)


def validate(verb: str, document: Any) -> None:
    """Raise `jsonschema.ValidationError` (the most relevant error) unless `document` matches `verb`'s schema."""
    from jsonschema.exceptions import best_match

    error = best_match(validator(verb).iter_errors(document))
    if error is not None:
        raise error
