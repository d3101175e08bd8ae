"""Reading a mapping's keys: the problems collected, and the `associations:` section."""

from __future__ import annotations

from collections.abc import Mapping as AnyMapping
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from ..core.hubspot import DEFAULT_ASSOCIATION_TYPES, AssociationCategory, canonical_object_type
from .model import (
    DEFAULT_SEPARATOR,
    AssociationSpec,
    AssociationTypeSpec,
    LinkPolicy,
    OnMissing,
    Reference,
    _inferred_target,
    _suggest,
)

__all__ = ["AssociationKeys", "unknown_keys"]

E = TypeVar("E", bound=StrEnum)
_ASSOC_KEYS = ("column", "separator", "types", "required", "to", "sync", "by", "on_missing")
_TYPE_KEYS = ("associationCategory", "associationTypeId", "label")


def unknown_keys(
    problems: list[str], path: str, data: AnyMapping[Any, Any], allowed: tuple[str, ...]
) -> None:
    """A problem for each key of `data` that is not `allowed`, naming the nearest."""
    for k in data:
        if k not in allowed:
            where = f"{path}.{k}" if path else str(k)
            problems.append(
                f"{where}: unknown key{_suggest(str(k), allowed)} (allowed: {', '.join(allowed)})"
            )


class AssociationKeys:
    """The problems found so far, the checks every section uses, and `associations:`."""

    def __init__(self, source: str, base: Path | None = None) -> None:
        self.source = source
        self.base = base
        """The mapping file's folder, which a `values_file:` path is relative to."""
        self.object_type_name = ""
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def choice(self, path: str, raw: Any, enum: type[E], noun: str) -> E | None:
        """`raw` as a member of `enum`, or a problem naming the nearest value."""
        try:
            return enum(str(raw))
        except ValueError:
            allowed = [str(m.value) for m in enum]
            self.fail(
                path,
                f"{raw!r} is not a {noun}{_suggest(str(raw), allowed)} "
                f"(allowed: {', '.join(allowed)})",
            )
            return None

    def flag(self, path: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.fail(path, "must be true or false")
            return False
        return value

    def reference(
        self, path: str, spec: dict[str, Any], *, to: Any, column: bool
    ) -> Reference | None:
        """`to:` + `by:` (+ `on_missing:`) as a Reference; None when `by:` is not given."""
        by = spec.get("by")
        if by is None:
            if "on_missing" in spec:
                self.fail(f"{path}.on_missing", "only a reference (with `by:`) takes on_missing")
            if column and "to" in spec:
                self.fail(f"{path}.by", "required with `to:`: the property of the other record "
                          "that the cell holds (e.g. by: hs_sku)")  # fmt: skip
            return None
        if not isinstance(by, str) or not by.strip():
            self.fail(f"{path}.by", "give the property of the other record the cell holds")
            return None
        if not isinstance(to, str) or not to.strip():
            self.fail(f"{path}.to", "required with `by:`: the object type the cell names")
            return None
        on_missing = self.choice(
            f"{path}.on_missing", spec.get("on_missing", "invalid"), OnMissing, "choice"
        )
        return Reference(
            to=canonical_object_type(to.strip()),
            by=by.strip(),
            on_missing=on_missing or OnMissing.INVALID,
        )

    def association(self, i: int, spec: Any, object_type: str) -> AssociationSpec | None:
        path = f"associations[{i}]"
        if not isinstance(spec, dict):
            self.fail(path, "give a mapping with `column:` and `types:`")
            return None
        unknown_keys(self.problems, path, spec, _ASSOC_KEYS)
        column = spec.get("column")
        if not isinstance(column, str | int) or not str(column).strip():
            self.fail(f"{path}.column", "required: the spreadsheet column holding target ids")
            column = ""
        separator = spec.get("separator", DEFAULT_SEPARATOR)
        if not isinstance(separator, str) or not separator or separator.isalnum():
            self.fail(f"{path}.separator", f'{separator!r} cannot separate ids; use ";" or ","')
            separator = DEFAULT_SEPARATOR
        required = spec.get("required", False)
        if not isinstance(required, bool):
            self.fail(f"{path}.required", "must be true or false")
            required = False
        to = spec.get("to")
        if to is not None:
            to = canonical_object_type(str(to))
        before = len(self.problems)
        types = self.association_types(path, spec.get("types"), object_type, to)
        if to is None:
            to = _inferred_target(object_type, types)
        if to is None and types and len(self.problems) == before:
            self.fail(
                f"{path}.to",
                "required: the object type the ids point at (e.g. `to: contacts`); HubSpot's "
                "associations API needs it, and no HUBSPOT_DEFINED type in `types` names it",
            )
        sync = self.choice(f"{path}.sync", spec.get("sync", "sync"), LinkPolicy, "policy")
        reference = self.reference(path, spec, to=to, column=False)
        return AssociationSpec(
            column=str(column).strip(),
            types=types,
            separator=separator,
            required=required,
            to=to,
            sync=sync or LinkPolicy.SYNC,
            reference=reference,
        )

    def association_types(
        self, path: str, raw: Any, object_type: str, to: str | None
    ) -> tuple[AssociationTypeSpec, ...]:
        if not isinstance(raw, list) or not raw:
            # HubSpot accepts an empty list and links nothing: that is never what was meant.
            self.fail(
                f"{path}.types",
                "required: a non-empty list of {associationCategory, "
                "associationTypeId}; an empty list would link nothing",
            )
            return ()
        out = []
        for j, item in enumerate(raw):
            tpath = f"{path}.types[{j}]"
            if not isinstance(item, dict):
                self.fail(tpath, "give {associationCategory: ..., associationTypeId: ...}")
                continue
            unknown_keys(self.problems, tpath, item, _TYPE_KEYS)
            label = item.get("label")
            if label is not None and "associationTypeId" not in item:
                # The portal's labels give the id (and the category, when not given).
                raw_cat = item.get("associationCategory", AssociationCategory.USER_DEFINED.value)
                category = self.choice(
                    f"{tpath}.associationCategory", raw_cat, AssociationCategory, "category"
                )
                if category is not None:
                    out.append(AssociationTypeSpec(category=category, type_id=0, label=str(label)))
                continue
            raw_cat = item.get("associationCategory")
            category = self.choice(
                f"{tpath}.associationCategory", raw_cat, AssociationCategory, "category"
            )
            if category is None:
                continue
            type_id = item.get("associationTypeId")
            if isinstance(type_id, bool) or not isinstance(type_id, int) or type_id <= 0:
                self.fail(
                    f"{tpath}.associationTypeId",
                    f"{type_id!r} is not a positive whole "
                    "number (find ids in HubSpot's association labels)",
                )
                continue
            self.check_default_type(
                f"{tpath}.associationTypeId", category, type_id, object_type, to
            )
            out.append(AssociationTypeSpec(category=category, type_id=type_id))
        return tuple(out)

    def check_default_type(
        self,
        path: str,
        category: AssociationCategory,
        type_id: int,
        object_type: str,
        to: str | None,
    ) -> None:
        defaults = DEFAULT_ASSOCIATION_TYPES.get(object_type)
        if category is not AssociationCategory.HUBSPOT_DEFINED or defaults is None:
            return
        if to is not None and to in defaults and defaults[to] != type_id:
            self.fail(
                path,
                f"{type_id} is not the HUBSPOT_DEFINED type from {object_type} to "
                f"{to}; that is {defaults[to]}",
            )
        elif type_id not in defaults.values():
            known = ", ".join(f"{v} (to {k})" for k, v in defaults.items()) or "none"
            self.fail(
                path,
                f"{type_id} is not a HUBSPOT_DEFINED association type from "
                f"{object_type}; known: {known}",
            )

    def association_specs(self, data: dict[Any, Any], object_type: str) -> list[AssociationSpec]:
        """The `associations:` section, each association checked."""
        associations: list[AssociationSpec] = []
        raw_assoc = data.get("associations") or []
        if not isinstance(raw_assoc, list):
            self.fail("associations", "give a list of {column, types}")
            raw_assoc = []
        for i, spec in enumerate(raw_assoc):
            assoc = self.association(i, spec, object_type)
            if assoc is not None:
                associations.append(assoc)
        return associations
