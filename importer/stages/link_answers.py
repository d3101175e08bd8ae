"""Link stage, the answers: an associations batch sent and what HubSpot's answer says of each
input (carried out, refused, or left unsaid and read back), and the links records hold.

HubSpot's date-based associations API answers 200/201 with `errors` naming the inputs it did
not carry out (a portal's association limit reached, an id that does not exist), so no answer
is trusted by its status: an input counts as carried out only when the answer lists it (a
create's `results`) or, for a removal, when every error names its inputs and none names this
one. What an answer leaves unsaid is read back from HubSpot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..api.client import HubSpotClient, Verdict
from ..core.errors import HubSpotError, UncertainDelivery
from ..core.hubspot import MAX_ASSOCIATION_READS
from ..mapping.model import AssociationSpec

__all__ = ["LinkAnswer", "current_links", "linked_types", "send_links", "types_json"]

log = logging.getLogger(__name__)


def types_json(spec: AssociationSpec) -> list[dict[str, Any]]:
    """The association's types as HubSpot takes them in an input."""
    return [t.as_json() for t in spec.types]


@dataclass
class LinkAnswer:
    """What became of a batch's inputs: those not carried out, and which of those may have
    been after all (the answer was lost, or reading them back failed)."""

    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    """(from id, to id) -> why, for each input not carried out (or not known to be)."""
    unsure: set[tuple[str, str]] = field(default_factory=set)
    """The failures whose fate is unknown: HubSpot may hold them."""


def send_links(
    client: HubSpotClient,
    from_type: str,
    spec: AssociationSpec,
    operation: str,
    pairs: Sequence[tuple[str, str]],
) -> LinkAnswer:
    """Send one batch and say what became of each input. HubSpot's date-based API answers
    200/201 with `errors` naming inputs it refused, so every answer is read whatever its
    status: an input is carried out only when the answer says so (a create's `results`, or
    no error naming it); what the answer leaves open is read back."""
    types = types_json(spec)
    inputs = [{"from": {"id": f}, "to": {"id": t}, "types": types} for f, t in pairs]
    path = client.paths.associations_batch(from_type, str(spec.to), operation)
    try:
        reply = client.request("POST", path, {"inputs": inputs})
    except UncertainDelivery as exc:
        why = f"not confirmed ({exc}); the next run sends it again"
        return LinkAnswer({pair: why for pair in pairs}, set(pairs))
    body = reply.body if isinstance(reply.body, dict) else {}
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    pairs = list(pairs)
    if reply.verdict not in (Verdict.SUCCESS, Verdict.PARTIAL):
        return LinkAnswer(_refused_whole(pairs, errors or [body], reply.status))
    named, exact = _named(errors, pairs)
    results = body.get("results")
    if operation == "create" and isinstance(results, list):
        failures, unknown = _create_answer(pairs, results, named, exact)
    else:
        failures = {pair: _why(found) for pair, found in named.items()}
        unknown = _unaccounted(operation, body, pairs, failures, errors)
    answer = LinkAnswer(failures)
    if unknown:
        _read_back(client, from_type, spec, operation, unknown, answer)
    return answer


def _kinds(spec: AssociationSpec) -> set[tuple[str, int]]:
    """The association's types as an associations read lists them: (category, type id)."""
    return {(t.category.value, t.type_id) for t in spec.types}


def _create_answer(
    pairs: list[tuple[str, str]],
    results: list[Any],
    named: dict[tuple[str, str], list[dict[str, Any]]],
    exact: set[tuple[str, str]],
) -> tuple[dict[tuple[str, str], str], list[tuple[str, str]]]:
    """A create's answer, as (refused input -> why, inputs to read back). An input listed in
    `results` is made, unless an error names that very pair (then the answer contradicts
    itself: read back); one not listed is refused when an error names it (an id that does
    not exist names every input holding it), else read back."""
    made = {
        (str(r.get("fromObjectId")), str(r.get("toObjectId")))
        for r in results
        if isinstance(r, dict)
    }
    failures = {p: _why(named[p]) for p in pairs if p not in made and p in named}
    unknown = [p for p in pairs if (p in made and p in exact) or (p not in made and p not in named)]
    return failures, unknown


def _why(errors: list[dict[str, Any]]) -> str:
    return str(errors[0].get("message") or "refused")


def _refused_whole(
    pairs: list[tuple[str, str]], errors: list[dict[str, Any]], status: int
) -> dict[tuple[str, str], str]:
    """A batch refused as a whole (4xx): the inputs its errors name, or, when they name none,
    every input, each with HubSpot's word for it."""
    named, _ = _named(errors, pairs)
    failures: dict[tuple[str, str], str] = {}
    for pair in named or pairs:
        why = (named.get(pair) or errors or [{}])[0].get("message") or f"HTTP {status}"
        failures[pair] = str(why)
    return failures


def _named(
    errors: list[dict[str, Any]], pairs: list[tuple[str, str]]
) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], set[tuple[str, str]]]:
    """Each input and the errors that name it, and the inputs an error names as a pair. An
    error whose context names both records of some inputs (`fromObjectId` and `toObjectId`,
    say) names those inputs only; one that names single ids (`INVALID_OBJECT_IDS`: the ids
    that do not exist) names every input holding one of them. Taking an input for refused
    when it was carried out only has the next run send it again, where the reverse would be
    a link reported made and never made."""
    named: dict[tuple[str, str], list[dict[str, Any]]] = {}
    exact: set[tuple[str, str]] = set()
    for error in errors:
        ids = _ids_in(error)
        pair_named = [p for p in pairs if p[0] in ids and p[1] in ids]
        exact.update(pair_named)
        for pair in pair_named or [p for p in pairs if set(p) & ids]:
            named.setdefault(pair, []).append(error)
    return named, exact


def _ids_in(error: dict[str, Any]) -> set[str]:
    """Every id an error's context (and its detail errors' contexts) lists."""
    found: set[str] = set()
    for context in (
        _context(error),
        *(_context(d) for d in error.get("errors") or [] if isinstance(d, dict)),
    ):
        for values in context.values():
            if isinstance(values, list):
                found.update(str(v) for v in values)
    return found


def _context(error: dict[str, Any]) -> dict[str, Any]:
    context = error.get("context")
    return context if isinstance(context, dict) else {}


def _unaccounted(
    operation: str,
    body: dict[str, Any],
    pairs: list[tuple[str, str]],
    failures: dict[tuple[str, str], str],
    errors: list[dict[str, Any]],
) -> list[tuple[str, str]]:
    """The inputs an answer without `results` neither confirms nor names as refused: for a
    create, every unnamed one (it confirms none); for a removal (its answer lists none),
    every unnamed one when some error names no input or more errors were counted than
    listed."""
    left = [p for p in pairs if p not in failures]
    if operation == "create":
        return left
    counted = body.get("numErrors")
    unnamed = any(not _ids_in(e) for e in errors)
    if unnamed or (isinstance(counted, int) and counted > len(errors)):
        return left
    return []


def _read_back(
    client: HubSpotClient,
    from_type: str,
    spec: AssociationSpec,
    operation: str,
    pairs: list[tuple[str, str]],
    answer: LinkAnswer,
) -> None:
    """Add to `answer` what HubSpot holds of `pairs` after an answer that did not say: those
    not carried out (a create whose types are not all there, a removal whose types are still
    there), or, when reading them fails, every one as unsure."""
    wanted = _kinds(spec)
    try:
        linked = linked_types(client, from_type, spec, [f for f, _ in pairs])
    except HubSpotError as exc:
        why = f"not confirmed: HubSpot's answer did not say, and reading it back failed ({exc})"
        answer.failures.update((p, why) for p in pairs)
        answer.unsure.update(pairs)
        return
    for from_id, to_id in pairs:
        held = linked.get(from_id, {}).get(to_id, set())
        done = wanted <= held if operation == "create" else not (wanted & held)
        if not done:
            answer.failures[(from_id, to_id)] = (
                "HubSpot's answer did not list it as carried out, and reading the record's "
                "links back showed it was not"
            )
    log.info("read back %d links HubSpot's answer did not account for", len(pairs))


def current_links(
    client: HubSpotClient, from_type: str, spec: AssociationSpec, ids: list[str]
) -> dict[str, set[str]]:
    """Record id -> targets it is linked to with any of the association's types (paged)."""
    types = _kinds(spec)
    return {
        rid: {to_id for to_id, kinds in targets.items() if kinds & types}
        for rid, targets in linked_types(client, from_type, spec, ids).items()
        if any(kinds & types for kinds in targets.values())
    }


def linked_types(
    client: HubSpotClient, from_type: str, spec: AssociationSpec, ids: list[str]
) -> dict[str, dict[str, set[tuple[Any, Any]]]]:
    """Record id -> target id -> the association types (category, type id) between them, for
    every link of the records `ids` to the association's target type (paged)."""
    found: dict[str, dict[str, set[tuple[Any, Any]]]] = {}
    path = client.paths.associations_batch(from_type, str(spec.to), "read")
    pending = [{"id": i} for i in dict.fromkeys(ids)]
    for _ in range(100_000):  # bounded: each page moves on, and a record has finite links
        if not pending:
            break
        batch, pending = pending[:MAX_ASSOCIATION_READS], pending[MAX_ASSOCIATION_READS:]
        reply = client.request("POST", path, {"inputs": batch})
        if reply.verdict not in (Verdict.SUCCESS, Verdict.PARTIAL):
            raise HubSpotError(
                f"could not read the {spec.to} links of {from_type} records: HTTP "
                f"{reply.status}: {reply.body.get('message', '')}"
            )
        for result in reply.body.get("results") or []:
            rid = str(result["from"]["id"])
            targets = found.setdefault(rid, {})
            for target in result.get("to") or []:
                kinds = {(a.get("category"), a.get("typeId")) for a in target["associationTypes"]}
                targets.setdefault(str(target["toObjectId"]), set()).update(kinds)
            after = ((result.get("paging") or {}).get("next") or {}).get("after")
            if after:
                pending.append({"id": rid, "after": str(after)})
    return found
