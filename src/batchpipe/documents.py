"""The base of every document a run stores (plans, shard results, results): typed fields in snake_case, stored
as JSON in camelCase in field order, so the files stay what they were when they were untyped dictionaries.

A stored document is read back strictly (`read`): a field of the wrong type, a missing or an unknown one is a
`ValueError` naming the file, which callers treat as "no usable document there" (a corrupt or foreign file).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, ValidationError, model_serializer
from pydantic.alias_generators import to_camel


class Document(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, strict=True)

    # Fields added after a document's format was fixed: stored only when set, so that a document without them is
    # the same bytes (and its plan the same hash) as before they existed; absent, they read back as None.
    omitted_when_none: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if self.omitted_when_none and isinstance(data, dict):
            for name in self.omitted_when_none:
                if getattr(self, name) is None:
                    data.pop(name, None)
                    data.pop(to_camel(name), None)
        return data

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
