"""Trim HubSpot's public OpenAPI documents to the response schemas the sandbox must honour.

    python scripts/trim_openapi.py PATH/TO/hubspot-openapi > tests/hubspot_schemas.json

PATH holds HubSpot's OpenAPI specs (objects.v3.json, properties.v3.json, associations.v4.json,
associationsSchema.v4.json, from HubSpot's public spec collection). The output is one JSON
Schema document (draft 2020-12): the response schemas named in SOURCES and every schema they
reference, under `$defs`, beside the few answers the specs publish no schema for, written here
from what HubSpot documents in prose (PROSE). The test suite validates the sandbox's answers
against it and never reads the specs themselves. OpenAPI 3.0's `nullable` becomes a JSON
Schema type list.

One deviation, on purpose: HubSpot answers `null` for a requested property a record has no
value for (GET and batch/read with `properties`), while the specs type property values as
strings; property values may be null here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SOURCES = {
    "objects.v3.json": [
        "BatchResponseSimplePublicObject",
        "BatchResponseSimplePublicObjectWithErrors",
        "BatchResponseSimplePublicUpsertObject",
        "BatchResponseSimplePublicUpsertObjectWithErrors",
        "CollectionResponseWithTotalSimplePublicObject",
        "CollectionResponseSimplePublicObjectWithAssociationsForwardPaging",
        "SimplePublicObjectWithAssociations",
        "Error",
    ],
    "properties.v3.json": ["CollectionResponsePropertyNoPaging"],
    "associationsSchema.v4.json": ["CollectionResponseAssociationSpecWithLabelNoPaging"],
    "associations.v4.json": [
        "BatchResponseLabelsBetweenObjectPair",
        "BatchResponseLabelsBetweenObjectPairWithErrors",
        "BatchResponsePublicDefaultAssociation",
        "BatchResponsePublicAssociationMultiWithLabel",
        "BatchResponsePublicAssociationMultiWithLabelWithErrors",
    ],
}
NULLABLE_PROPERTY_VALUES = (
    "SimplePublicObject",
    "SimplePublicObjectWithAssociations",
    "SimplePublicUpsertObject",
)

# GET /account-info/2026-03/details: not in the spec collection; from HubSpot's 2026-03 API
# reference page "Retrieve account details" (every field required there).
ACCOUNT_DETAILS = {
    "type": "object",
    "required": [
        "accountType",
        "additionalCurrencies",
        "companyCurrency",
        "dataHostingLocation",
        "portalId",
        "timeZone",
        "uiDomain",
        "utcOffset",
        "utcOffsetMilliseconds",
    ],
    "properties": {
        "accountType": {"enum": ["APP_DEVELOPER", "DEVELOPER_TEST", "SANDBOX", "STANDARD"]},
        "additionalCurrencies": {"type": "array", "items": {"type": "string"}},
        "companyCurrency": {"type": "string"},
        "dataHostingLocation": {"type": "string"},
        "portalId": {"type": "integer"},
        "timeZone": {"type": "string"},
        "uiDomain": {"type": "string"},
        "utcOffset": {"type": "string"},
        "utcOffsetMilliseconds": {"type": "integer"},
    },
}


# The 200 an association archive or labels archive answers on a date-based path when it names
# inputs it did not carry out: the specs give those paths only a 204. HubSpot's 2026-03
# reference and its legacy API migration guide say the date-based batch endpoints answer a
# BatchResponse (status, results, errors, numErrors, requestedAt, startedAt, completedAt); its
# results are not described, so their items are left open.
BATCH_RESPONSE_DATE_BASED = {
    "type": "object",
    "required": ["completedAt", "errors", "numErrors", "results", "startedAt", "status"],
    "properties": {
        "completedAt": {"type": "string", "format": "date-time"},
        "errors": {"type": "array", "items": {"$ref": "#/$defs/StandardError"}},
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
        "numErrors": {"type": "integer"},
        "requestedAt": {"type": "string", "format": "date-time"},
        "results": {"type": "array"},
        "startedAt": {"type": "string", "format": "date-time"},
        "status": {"enum": ["CANCELED", "COMPLETE", "PENDING", "PROCESSING"]},
    },
}

# A 429: the specs' `Error` (every error answer of these paths) with the fields HubSpot's API
# usage guidelines show for its rate limiter's refusals (`errorType`, `policyName`, which
# names the limit spent; public clients log `groupName` and `requestId` in some, and
# `"category": "RATE_LIMITS"` in the search limit's).
RATE_LIMIT_ERROR = {
    "allOf": [
        {"$ref": "#/$defs/Error"},
        {
            "type": "object",
            "required": ["errorType", "policyName", "status"],
            "properties": {
                "errorType": {"const": "RATE_LIMIT"},
                "groupName": {"type": "string"},
                "policyName": {"enum": ["DAILY", "SECONDLY", "TEN_SECONDLY_ROLLING"]},
                "requestId": {"type": "string"},
                "status": {"const": "error"},
            },
        },
    ]
}
PROSE = {
    "AccountDetails": ACCOUNT_DETAILS,
    "BatchResponseDateBased": BATCH_RESPONSE_DATE_BASED,
    "RateLimitError": RATE_LIMIT_ERROR,
}
"""Answers the specs publish no schema for, from what HubSpot documents in prose."""


def convert(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: refs into $defs, nullable as a type list."""
    if isinstance(node, list):
        return [convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: convert(v) for k, v in node.items() if k not in ("example", "nullable")}
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def referenced(name: str, schemas: dict[str, Any], seen: set[str]) -> None:
    if name in seen:
        return
    seen.add(name)
    text = json.dumps(schemas[name])
    for other in schemas:
        if f'"#/components/schemas/{other}"' in text:
            referenced(other, schemas, seen)


def main(folder: Path) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for file, names in SOURCES.items():
        schemas = json.loads((folder / file).read_text(encoding="utf-8"))["components"]["schemas"]
        needed: set[str] = set()
        for name in names:
            referenced(name, schemas, needed)
        for name in sorted(needed):
            defs.setdefault(name, convert(schemas[name]))
    for name in NULLABLE_PROPERTY_VALUES:
        defs[name]["properties"]["properties"]["additionalProperties"]["type"] = ["string", "null"]
    defs.update(PROSE)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": (
            "Trimmed from HubSpot's public OpenAPI specs (objects.v3.json, properties.v3.json, "
            "associations.v4.json and associationsSchema.v4.json; HubSpot's public API spec "
            "collection, commit 99893791383254f52aa07662baeb98aad65cc710) by "
            "scripts/trim_openapi.py. Not in the specs, from HubSpot's prose: AccountDetails "
            "(its 2026-03 API reference), BatchResponseDateBased (the date-based API's "
            "BatchResponse, for an association archive's 200 with errors) and RateLimitError "
            "(the Error of its API usage guidelines' 429). Property values may be null, as "
            "HubSpot answers for requested properties without a value."
        ),
        "$defs": dict(sorted(defs.items())),
    }


if __name__ == "__main__":
    json.dump(main(Path(sys.argv[1])), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
