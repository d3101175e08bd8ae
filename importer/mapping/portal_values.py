"""The portal's own words for values: owners (by email, name or id), a pipeline's stages (by
label or id) and the currencies a price may be in, read once per run and turned into the
`ValueMap`s the validate stage reads cells through."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .model import ValueMap, fold

__all__ = [
    "Currencies",
    "Owner",
    "Pipeline",
    "Stage",
    "owner_words",
    "read_currencies",
    "read_owners",
    "read_pipelines",
    "stage_words",
]

log = logging.getLogger(__name__)

Get = Callable[[str, str], dict[str, Any]]
"""Reads a path of the portal: (path, what it is, for messages) -> the answer's JSON."""
_OWNERS_PAGE = 500  # HubSpot's largest page of owners
_MAX_PAGES = 200  # 100,000 owners: no portal has more; a cursor that never ends stops here


@dataclass(frozen=True, kw_only=True)
class Owner:
    id: str
    email: str
    first_name: str
    last_name: str
    active: bool

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, active: bool) -> Owner:
        return cls(
            id=str(data.get("id", "")),
            email=str(data.get("email") or ""),
            first_name=str(data.get("firstName") or "").strip(),
            last_name=str(data.get("lastName") or "").strip(),
            active=active and not data.get("archived", False),
        )


def read_owners(get: Get, path: str) -> list[Owner]:
    """Every owner of the portal, active ones and deactivated (archived) ones, page by page."""
    owners: list[Owner] = []
    for archived in (False, True):
        after = ""
        for _ in range(_MAX_PAGES):
            query = f"?limit={_OWNERS_PAGE}&archived={'true' if archived else 'false'}"
            body = get(path + query + (f"&after={quote(after)}" if after else ""), "owners")
            owners += [
                Owner.from_json(r, active=not archived)
                for r in body.get("results") or []
                if isinstance(r, dict)
            ]
            after = str(((body.get("paging") or {}).get("next") or {}).get("after") or "")
            if not after:
                break
    log.info("read %d owners from the portal", len(owners))
    return owners


def owner_words(owners: Iterable[Owner]) -> ValueMap:
    """An owner column's words: each active owner's id, email and full name give its id; a
    deactivated owner's, or a name two active owners share, are refused with the reason."""
    owners = list(owners)
    active = [o for o in owners if o.active]
    names = Counter(fold(o.name) for o in active if o.name)
    words: list[tuple[str, str]] = []
    refused: list[tuple[str, str]] = []
    for o in active:
        words += [(o.id, o.id)] + ([(o.email, o.id)] if o.email else [])
        if o.name and names[fold(o.name)] == 1:
            words.append((o.name, o.id))
        elif o.name:
            refused.append((o.name, f"{names[fold(o.name)]} owners are called {o.name}; "
                            "give the owner's email instead"))  # fmt: skip
    taken = {fold(w) for w, _ in words} | {fold(w) for w, _ in refused}
    for o in owners:
        if o.active:
            continue
        why = f"{o.name or o.email} is a deactivated owner in HubSpot; choose an active one"
        refused += [(w, why) for w in (o.id, o.email, o.name) if w and fold(w) not in taken]
    return ValueMap(words=tuple(words), refused=tuple(refused), source="the portal's owners")


@dataclass(frozen=True, kw_only=True)
class Stage:
    id: str
    label: str


@dataclass(frozen=True, kw_only=True)
class Pipeline:
    id: str
    label: str
    stages: tuple[Stage, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pipeline:
        stages = sorted(
            (s for s in data.get("stages") or [] if isinstance(s, dict) and not s.get("archived")),
            key=lambda s: s.get("displayOrder", 0),
        )
        return cls(
            id=str(data.get("id", "")),
            label=str(data.get("label") or data.get("id", "")),
            stages=tuple(
                Stage(id=str(s.get("id", "")), label=str(s.get("label", ""))) for s in stages
            ),
        )


def read_pipelines(get: Get, path: str, object_type: str) -> list[Pipeline]:
    body = get(path, f"{object_type} pipelines")
    return [
        Pipeline.from_json(r)
        for r in body.get("results") or []
        if isinstance(r, dict) and not r.get("archived")
    ]


def find_pipeline(pipelines: list[Pipeline], wanted: str) -> Pipeline | None:
    """The pipeline whose id is `wanted`, else whose label is (without regard to case)."""
    by_id = next((p for p in pipelines if p.id == wanted), None)
    folded = wanted.casefold()
    return by_id or next((p for p in pipelines if p.label.casefold() == folded), None)


def stage_words(pipelines: list[Pipeline], pipeline: Pipeline) -> ValueMap:
    """A stage column's words: the pipeline's stages by id and label give the stage id; a
    stage only another pipeline has is refused, naming both pipelines."""
    words = [(s.id, s.id) for s in pipeline.stages] + [(s.label, s.id) for s in pipeline.stages]
    own = {w.casefold() for w, _ in words}
    refused = [
        (word, f"a stage of pipeline {other.label}, not of {pipeline.label}")
        for other in pipelines
        if other.id != pipeline.id
        for s in other.stages
        for word in (s.id, s.label)
        if word.casefold() not in own
    ]
    return ValueMap(
        words=tuple(words), refused=tuple(refused), source=f"the stages of {pipeline.label}"
    )


@dataclass(frozen=True, kw_only=True)
class Currencies:
    company: str
    others: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return (self.company, *self.others)

    def describe(self) -> str:
        return ", ".join([f"{self.company} (the company currency)", *self.others])


def read_currencies(get: Get, company_path: str, rates_path: str) -> Currencies:
    """The company currency and the others the portal has (those with an exchange rate)."""
    answer = get(company_path, "company currency")
    # HubSpot names the company currency by its code in `id`.
    company = str(answer.get("id") or answer.get("currencyCode") or "").upper()
    rates = get(rates_path, "exchange rates").get("results") or []
    others = sorted(
        {
            str(r.get("fromCurrencyCode", "")).upper()
            for r in rates
            if isinstance(r, dict) and r.get("fromCurrencyCode")
        }
        - {company}
    )
    return Currencies(company=company, others=tuple(others))
