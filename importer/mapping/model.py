"""The mapping: what turns a sheet's columns into HubSpot properties (`Mapping`)."""

from __future__ import annotations

import difflib
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from ..core.errors import ConfigError, MappingError
from ..core.hubspot import DEFAULT_ASSOCIATION_TYPES, AssociationCategory, canonical_object_type
from .guards import Guards
from .missing_keys import MissingRows

__all__ = [
    "FALSE_WORDS",
    "TRUE_WORDS",
    "AssociationSpec",
    "AssociationTypeSpec",
    "ColumnSpec",
    "LinkPolicy",
    "Mapping",
    "NumberFormat",
    "OnMissing",
    "PropertyType",
    "Reference",
    "SyncMode",
    "ValueMap",
    "WriteRule",
    "fold",
]

log = logging.getLogger(__name__)

DEFAULT_DATE_FORMAT = "%Y-%m-%d"
DEFAULT_SEPARATOR = ";"
E = TypeVar("E", bound=StrEnum)
_OBJECT_TYPE_RE = re.compile(r"^(?:\d+-\d+|[A-Za-z][A-Za-z0-9_]*)$")


class SyncMode(StrEnum):
    """How rows reach HubSpot (`mode:` in the mapping, `--mode` on the command line)."""

    CREATE = "create"  # create new rows; update rows an earlier run created that changed
    UPSERT = "upsert"  # batch/upsert on the key's unique property
    UPDATE = "update"  # update only records the journal or the key property can find


class LinkPolicy(StrEnum):
    """What a run does with links a cell no longer lists (`sync:` on an association)."""

    SYNC = "sync"  # remove the links this mapping made that the cell no longer lists
    ADD = "add"  # only ever add
    REPLACE = "replace"  # the cell is the whole truth: remove anyone's other links of its types


class OnMissing(StrEnum):
    """What a reference whose key no record has does to its row (`on_missing:`)."""

    INVALID = "invalid"  # the row is invalid, the cell named
    SKIP = "skip"  # the reference is left out, and the row's message says so


@dataclass(frozen=True, kw_only=True)
class Reference:
    """A cell that names another record by a key: `to` (object type) and `by` (property)."""

    to: str
    by: str
    on_missing: OnMissing = OnMissing.INVALID


class PropertyType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"
    ENUMERATION = "enumeration"
    OWNER = "owner"
    """A column of owners' emails, names or ids, sent as the owner's id."""


TRUE_WORDS = frozenset({"true", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "no", "n", "0"})
"""The words a bool column reads (any case), besides a `values:` map's."""


class WriteRule(StrEnum):
    """When a column's value is written to a record that exists (`write:` on a column)."""

    ALWAYS = "always"  # every run that has a new value for it
    IF_EMPTY = "if_empty"  # only where HubSpot's value is empty (read first)
    CREATE_ONLY = "create_only"  # on create, never on update


@dataclass(frozen=True, kw_only=True)
class NumberFormat:
    """How a sheet writes its numbers (`number:` on a column or the whole mapping)."""

    decimal: str = "."
    thousands: str = ""
    """"" when the sheet groups no thousands; else ".", ",", " " or "'"."""
    percent: str | None = None
    """"whole" (15 % is sent as 15) or "fraction" (0.15); None: as the property's display
    hint says (a probability takes a fraction, anything else the whole number)."""

    @property
    def plain(self) -> bool:
        return self.decimal == "." and not self.thousands


@dataclass(frozen=True, kw_only=True)
class ValueMap:
    """The sheet's own words for what a property takes: from the mapping (`values:`,
    `values_file:`) or from the portal (owners by email or name, a pipeline's stages by
    label). Words are compared trimmed and without regard to case."""

    words: tuple[tuple[str, str], ...]
    """(word, value sent) pairs; a word's case is kept for messages."""
    refused: tuple[tuple[str, str], ...] = ()
    """(word, why) pairs: words that name something HubSpot would refuse (an inactive
    owner, a stage of another pipeline, a name two owners share)."""
    source: str = "values"
    """Where the words come from, for messages: "values", "the portal's owners", ..."""
    exhaustive: bool = True
    """A cell must be one of `words`; otherwise (enumerations) other cells go on to the
    property's own check."""
    from_booleans: tuple[str, ...] = ()
    """Words whose value YAML read as a boolean (`no` -> false): right for a bool property
    only."""

    def folded(self) -> dict[str, str]:
        """Each word as cells are compared (`fold`) -> the value sent."""
        return {fold(w): v for w, v in self.words}

    def folded_refusals(self) -> dict[str, str]:
        return {fold(w): why for w, why in self.refused}


def fold(word: str) -> str:
    """A word as a sheet's cells are compared with the words of a ValueMap: trimmed, in
    Unicode's composed form (Müller typed either way), without regard to case."""
    return unicodedata.normalize("NFC", word.strip()).casefold()


@dataclass(frozen=True, kw_only=True)
class ColumnSpec:
    """One spreadsheet column sent as one HubSpot property."""

    column: str
    property: str
    type: PropertyType = PropertyType.STRING
    required: bool = False
    format: str | None = None
    options: tuple[str, ...] = ()
    timezone: str = "UTC"
    type_given: bool = False
    """The mapping named the type; otherwise the portal's property type is used."""
    option_labels: tuple[tuple[str, str], ...] = ()
    """(label, value) of the portal's options: a cell may hold either; the value is sent."""
    multiple: bool = False
    """A multi-select: the cell holds several options separated by ";"."""
    unique: bool = False
    """HubSpot requires the property's values to be unique: they must be in the file too."""
    clear_empty: bool = False
    """A cell emptied since the last run clears HubSpot's value (sends ""); otherwise an empty
    cell leaves HubSpot's value as it is."""
    reference: Reference | None = None
    """`to:` and `by:`: the cell holds a key of another record, and its HubSpot id is sent."""
    number: NumberFormat | None = None
    """How the sheet writes this column's numbers (None: plain, a dot as decimal point)."""
    currency: str | None = None
    """`currency: EUR`: a price in that currency (products' `hs_price_eur`)."""
    values: ValueMap | None = None
    """The sheet's words for the property's values (`values:`, owners, stages)."""
    pipeline: str | None = None
    """`pipeline:` (label or id): the cell holds stages of this pipeline, by label or id."""
    pipeline_id: str = ""
    """The portal's id of `pipeline`: written with each stage the column gives."""
    write: WriteRule = WriteRule.ALWAYS
    display_hint: str = ""
    """The portal's numberDisplayHint of a number property (percentage, probability, ...)."""


@dataclass(frozen=True, kw_only=True)
class AssociationTypeSpec:
    category: AssociationCategory
    type_id: int
    label: str | None = None
    """Given by label (`label: Primary buyer`): the id is looked up in the portal."""

    def as_json(self) -> dict[str, Any]:
        return {"associationCategory": self.category.value, "associationTypeId": self.type_id}


def _inferred_target(object_type: str, types: Sequence[AssociationTypeSpec]) -> str | None:
    """The object type a HUBSPOT_DEFINED type id of the list points at from `object_type`."""
    defaults = DEFAULT_ASSOCIATION_TYPES.get(canonical_object_type(object_type), {})
    for t in types:
        if t.category is AssociationCategory.HUBSPOT_DEFINED:
            found = next((to for to, tid in defaults.items() if tid == t.type_id), None)
            if found is not None:
                return found
    return None


@dataclass(frozen=True, kw_only=True)
class AssociationSpec:
    """A column of target record ids, each becoming one association entry with `types`."""

    column: str
    types: tuple[AssociationTypeSpec, ...]
    separator: str = DEFAULT_SEPARATOR
    required: bool = False
    to: str | None = None
    """The target object type (inferred from a HUBSPOT_DEFINED type when not given)."""
    sync: LinkPolicy = LinkPolicy.SYNC
    reference: Reference | None = None
    """`by:`: the cell holds keys of the target records (their `by` property), not ids."""


@dataclass(frozen=True, kw_only=True)
class Mapping:
    object_type: str
    columns: tuple[ColumnSpec, ...]
    key: str | None = None
    constants: tuple[tuple[str, str], ...] = ()
    associations: tuple[AssociationSpec, ...] = ()
    mode: SyncMode = SyncMode.CREATE
    source: str = "<mapping>"
    number: NumberFormat | None = None
    """`number:` at the top: how the sheet writes numbers, for columns that do not say."""
    header_row: int | None = None
    """`header_row:` the sheet row that holds the header (None: found by the reader)."""
    notify: tuple[str, ...] = ()
    """`notify:` webhook URLs told of the end of every run of this mapping (with --notify's)."""
    fill_down: tuple[str, ...] = ()
    """Columns whose empty cells take the value of their group's first row (an export that
    writes a product's title on its first variant's row only)."""
    group_by: str | None = None
    """The column whose equal values make a group for `fill_down` (Shopify's Handle); without
    it a group starts at each row whose first `fill_down` column is filled."""
    skip_rows_without: tuple[str, ...] = ()
    """Rows where any of these columns is empty are skipped, never sent (image-only rows)."""
    skip_rows_where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(column, values) pairs: rows whose cell in the column is one of the values (trimmed,
    without regard to case) are skipped, never sent (WooCommerce's variable parent rows)."""
    guards: Guards = field(default_factory=Guards)
    """`guards:` what stops a run of this mapping before it writes anything (the command
    line's guards come first)."""
    missing_rows: MissingRows = field(default_factory=MissingRows)
    """`missing_rows:` what a run does to the records this mapping holds whose key is no
    longer in the feed (keep, archive, or set properties)."""
    by_column: dict[str, ColumnSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_column", {c.column: c for c in self.columns})

    @property
    def key_property(self) -> str | None:
        return self.by_column[self.key].property if self.key is not None else None

    @property
    def references(self) -> list[Reference]:
        """The references of its columns and associations (`to:` with `by:`)."""
        found = [c.reference for c in self.columns] + [a.reference for a in self.associations]
        return [r for r in found if r is not None]

    @property
    def clearing(self) -> frozenset[str]:
        """Properties whose emptied cell clears HubSpot's value (`clear_empty: true`)."""
        return frozenset(c.property for c in self.columns if c.clear_empty)

    @property
    def held_back(self) -> dict[str, WriteRule]:
        """Properties a write rule may hold back from an update: property -> rule."""
        return {c.property: c.write for c in self.columns if c.write is not WriteRule.ALWAYS}

    @property
    def source_columns(self) -> list[str]:
        """Every spreadsheet column the mapping reads, in mapping order."""
        return [c.column for c in self.columns] + [a.column for a in self.associations]

    @property
    def row_columns(self) -> list[str]:
        """Columns the mapping reads to shape its rows (fill down, skip), mapped or not."""
        shaping = [*self.fill_down, *self.skip_rows_without]
        shaping += [column for column, _ in self.skip_rows_where]
        if self.group_by is not None:
            shaping.append(self.group_by)
        return list(dict.fromkeys(c for c in shaping if c not in self.source_columns))

    def check_mode(self, mode: SyncMode) -> None:
        """Raise ConfigError when `mode` (the command line's, over the file's) cannot work
        with this mapping: upsert finds each record by the key, so it needs one. A keyless
        create is allowed, with a warning: its reruns cannot recognise the records."""
        if mode is SyncMode.CREATE and self.key is None:
            log.warning(
                "%s has no key: a run of it creates a record per row, and a later run cannot "
                "tell them apart from new rows (the same file stops with exit 2; a file with a "
                "new name creates every record again). Add `key:` naming a column of unique "
                "values whose property HubSpot holds unique (SKU -> hs_sku, Email -> email)",
                self.source,
            )
        if mode is SyncMode.UPSERT and self.key is None:
            raise ConfigError(
                f"{self.source}: --mode upsert needs a key, and this mapping has none: add "
                "`key:` naming a column whose property has unique values in HubSpot (e.g. SKU "
                "-> hs_sku), or use --mode create"
            )

    def check_columns(
        self,
        available: Iterable[str],
        where: str,
        duplicates: AnyMapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Fail when a mapped column is missing (naming the nearest header) or repeated."""
        headers = list(available)
        problems = []
        for name in self.source_columns + self.row_columns:
            if duplicates and name in duplicates:
                cells = " and ".join(duplicates[name])
                problems.append(
                    f"column {name!r} appears more than once in {where} ({cells}); rename the "
                    "copies so the mapping can tell which one to import"
                )
            elif name not in headers:
                problems.append(f"column {name!r} is not in {where}{_suggest(name, headers)}")
        if problems:
            columns = ", ".join(repr(h) for h in headers)
            raise MappingError(self.source, problems, note=f"The sheet's columns are: {columns}.")


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        folded = {c.casefold().strip(): c for c in choices}
        hit = folded.get(word.casefold().strip())
        close = [hit] if hit else []
    return f"; did you mean {close[0]!r}?" if close else ""
