"""Trim HubSpot's public OpenAPI documents to the response schemas the sandbox must honour.

    python scripts/trim_openapi.py PATH/TO/hubspot-openapi > tests/hubspot_schemas.json

PATH holds HubSpot's OpenAPI specs (objects.v3.json, properties.v3.json,
associationsSchema.v4.json, from HubSpot's public spec collection). The output is one JSON
Schema document (draft 2020-12): the named responses under `responses`, every schema they
reference under `$defs`. The test suite validates the sandbox's answers against it and never
reads the specs themselves. OpenAPI 3.0's `nullable` becomes a JSON Schema type list.

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
    defs["AccountDetails"] = ACCOUNT_DETAILS
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": (
            "Trimmed from HubSpot's public OpenAPI specs (objects v3, properties v3, "
            "associations and associations schema v4; HubSpot's public API spec collection, commit "
            "99893791383254f52aa07662baeb98aad65cc710) by scripts/trim_openapi.py; account "
            "details from HubSpot's 2026-03 API reference. Property values may be null, "
            "as HubSpot answers for requested properties without a value."
        ),
        "$defs": dict(sorted(defs.items())),
    }


if __name__ == "__main__":
    json.dump(main(Path(sys.argv[1])), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
