"""The base of every document a run stores (plans, shard results, results): typed fields in snake_case, stored
as JSON in camelCase in field order, so the files stay what they were when they were untyped dictionaries.

A stored document is read back strictly (`read`): a field of the wrong type, a missing or an unknown one is a
`ValueError` naming the file, which callers treat as "no usable document there" (a corrupt or foreign file).
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel


def _unset(value: Any) -> bool:
    return value is None


def added() -> Any:
    """A field added after its document's format was fixed: stored only when set, so that a document without it is
    the same bytes (a plan the same hash) as before it existed; absent, it reads back as None."""
    return Field(default=None, exclude_if=_unset)


class Document(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, strict=True)

    def stored(self) -> dict[str, Any]:
        """The document as JSON-able values under its stored (camelCase) names, in field order."""
        return self.model_dump(by_alias=True)

    @classmethod
    def read(cls, doc: object, source: str = "document") -> Self:
        """The document from its stored JSON value; ValueError (one line) when it is not one."""
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise ValueError(f"{source}: not a {cls.__name__}: {where}: {first['msg']}") from None


class ShardDocument(Document):
    """What every shard result starts with: whose it is."""

    job_name: str
    shard: int
    plan_hash: str
