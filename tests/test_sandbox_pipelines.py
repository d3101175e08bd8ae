"""The sandbox serves the portal's pipelines as HubSpot's pipelines API does, defines the
pipeline and stage properties from them, and refuses, input by input, a stage that is not one
of its record's pipeline's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from importer.sandbox import Sandbox
from importer.sandbox.pipelines import Pipeline, Stage

from .test_sandbox_fidelity import call
from .test_sandbox_owners import matches

PIPELINES = "/crm/pipelines/2026-03"
V = "/crm/objects/2026-03"
DEFAULT_STAGES = [
    ("appointmentscheduled", "Appointment scheduled", "0.2", "false"),
    ("qualifiedtobuy", "Qualified to buy", "0.4", "false"),
    ("presentationscheduled", "Presentation scheduled", "0.6", "false"),
    ("decisionmakerboughtin", "Decision maker bought-in", "0.8", "false"),
    ("contractsent", "Contract sent", "0.9", "false"),
    ("closedwon", "Closed won", "1.0", "true"),
    ("closedlost", "Closed lost", "0.0", "true"),
]
RENEWALS = "75123456"
RENEWAL_STAGES = ["75123457", "75123458", "75123459", "75123460"]
ORDER_STAGE_LABELS = [
    "Checkout abandoned",
    "Checkout pending",
    "Checkout completed",
    "Processed",
    "Shipped",
    "Cancelled",
    "Refunded",
]

# HubSpot's Pipeline and PipelineStage (crm pipelines spec, 2026-03).
_STAGE = {
    "type": "object",
    "required": [
        "archived",
        "createdAt",
        "displayOrder",
        "id",
        "label",
        "metadata",
        "updatedAt",
        "writePermissions",
    ],
    "properties": {
        "archived": {"type": "boolean"},
        "createdAt": {"type": "string"},
        "displayOrder": {"type": "integer"},
        "id": {"type": "string"},
        "label": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "updatedAt": {"type": "string"},
        "writePermissions": {"enum": ["CRM_PERMISSIONS_ENFORCEMENT", "INTERNAL_ONLY", "READ_ONLY"]},
    },
    "additionalProperties": False,
}
PIPELINE = {
    "type": "object",
    "required": ["archived", "createdAt", "displayOrder", "id", "label", "stages", "updatedAt"],
    "properties": {
        "archived": {"type": "boolean"},
        "createdAt": {"type": "string"},
        "displayOrder": {"type": "integer"},
        "id": {"type": "string"},
        "label": {"type": "string"},
        "stages": {"type": "array", "items": _STAGE},
        "updatedAt": {"type": "string"},
    },
    "additionalProperties": False,
}
PIPELINES_ANSWER = {
    "type": "object",
    "required": ["results"],
    "properties": {"results": {"type": "array", "items": PIPELINE}},
    "additionalProperties": False,
}


def pipelines_of(box: Sandbox, object_type: str, path: str = PIPELINES) -> list[dict[str, Any]]:
    r = call(box, "GET", f"{path}/{object_type}")
    assert r.status_code == 200, r.text
    matches(r.json(), PIPELINES_ANSWER)
    results: list[dict[str, Any]] = r.json()["results"]
    return results


def options(box: Sandbox, object_type: str, name: str) -> list[tuple[str, str]]:
    props = call(box, "GET", f"/crm/properties/2026-03/{object_type}").json()["results"]
    (prop,) = [p for p in props if p["name"] == name]
    assert (prop["type"], prop["fieldType"]) == ("enumeration", "select")
    return [(o["value"], o["label"]) for o in prop["options"]]


# --- the pipelines API ----------------------------------------------------------------------


def test_deal_pipelines_are_the_sales_pipeline_and_renewals(sandbox: Sandbox) -> None:
    sales, renewals = pipelines_of(sandbox, "deals")
    assert (sales["id"], sales["label"], sales["displayOrder"]) == ("default", "Sales Pipeline", 0)
    assert [
        (s["id"], s["label"], s["metadata"]["probability"], s["metadata"]["isClosed"])
        for s in sales["stages"]
    ] == DEFAULT_STAGES
    assert [s["displayOrder"] for s in sales["stages"]] == list(range(7))
    assert (renewals["id"], renewals["label"]) == (RENEWALS, "Renewals")
    assert [s["id"] for s in renewals["stages"]] == RENEWAL_STAGES
    # A stage's label alone is ambiguous: both pipelines have a "Closed won".
    won = [s["id"] for p in (sales, renewals) for s in p["stages"] if s["label"] == "Closed won"]
    assert won == ["closedwon", "75123459"]
    assert pipelines_of(sandbox, "0-3") == [sales, renewals]  # the type's id names it too


def test_ticket_and_order_pipelines(sandbox: Sandbox) -> None:
    (support,) = pipelines_of(sandbox, "tickets")
    assert (support["id"], support["label"]) == ("0", "Support Pipeline")
    assert [(s["id"], s["label"], s["metadata"]) for s in support["stages"]] == [
        ("1", "New", {"ticketState": "OPEN"}),
        ("2", "Waiting on contact", {"ticketState": "OPEN"}),
        ("3", "Waiting on us", {"ticketState": "OPEN"}),
        ("4", "Closed", {"ticketState": "CLOSED"}),
    ]
    (order,) = pipelines_of(sandbox, "orders")
    assert [s["label"] for s in order["stages"]] == ORDER_STAGE_LABELS


def test_one_pipeline_by_id_and_a_404_for_one_the_portal_lacks(sandbox: Sandbox) -> None:
    r = call(sandbox, "GET", f"{PIPELINES}/deals/{RENEWALS}")
    assert r.status_code == 200
    matches(r.json(), PIPELINE)
    assert r.json()["label"] == "Renewals"
    for path in (f"{PIPELINES}/deals/0", f"{PIPELINES}/tickets/default"):
        missing = call(sandbox, "GET", path)
        assert missing.status_code == 404
        assert missing.json()["category"] == "OBJECT_NOT_FOUND"


@pytest.mark.parametrize("object_type", ["products", "contacts", "line_items"])
def test_a_type_without_pipelines_is_refused_by_name(sandbox: Sandbox, object_type: str) -> None:
    r = call(sandbox, "GET", f"{PIPELINES}/{object_type}")
    assert r.status_code == 400
    assert r.json()["category"] == "VALIDATION_ERROR"
    assert object_type in r.json()["message"]


def test_a_type_the_portal_lacks_is_refused(sandbox: Sandbox) -> None:
    r = call(sandbox, "GET", f"{PIPELINES}/widgets")
    assert r.status_code == 400
    assert "widgets" in r.json()["message"]


def test_pipelines_are_served_at_served_versions_and_numbered_paths_while_legacy(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    after_sunset = make_sandbox(api_versions=("2026-09",))
    assert call(after_sunset, "GET", "/crm/pipelines/2026-09/deals").status_code == 200
    for path in ("/crm/pipelines/2026-03/deals", "/crm/v3/pipelines/deals"):
        assert call(after_sunset, "GET", path).status_code == 404
    today = make_sandbox(legacy_paths=True)
    assert pipelines_of(today, "deals", "/crm/v3/pipelines") == pipelines_of(today, "deals")


# --- the properties the pipelines define ----------------------------------------------------


def test_the_pipeline_properties_list_every_pipeline_and_every_stage(sandbox: Sandbox) -> None:
    assert options(sandbox, "deals", "pipeline") == [
        ("default", "Sales Pipeline"),
        (RENEWALS, "Renewals"),
    ]
    stages = options(sandbox, "deals", "dealstage")
    assert [v for v, _ in stages] == [s[0] for s in DEFAULT_STAGES] + RENEWAL_STAGES
    assert [v for v, label in stages if label == "Closed won"] == ["closedwon", "75123459"]
    assert options(sandbox, "tickets", "hs_pipeline") == [("0", "Support Pipeline")]
    assert [label for _, label in options(sandbox, "tickets", "hs_pipeline_stage")] == [
        "New",
        "Waiting on contact",
        "Waiting on us",
        "Closed",
    ]
    (order,) = pipelines_of(sandbox, "orders")
    assert options(sandbox, "orders", "hs_pipeline") == [(order["id"], "Order pipeline")]
    assert options(sandbox, "orders", "hs_pipeline_stage") == [
        (s["id"], s["label"]) for s in order["stages"]
    ]


ONBOARDING = Pipeline(
    id="onboarding",
    label="Onboarding",
    display_order=0,
    stages=(Stage(id="kickoff", label="Kick-off"), Stage(id="live", label="Live")),
)
ESCALATIONS = Pipeline(
    id="escalations",
    label="Escalations",
    display_order=1,
    stages=(Stage(id="raised", label="Raised"), Stage(id="solved", label="Solved")),
)


def test_the_pipelines_a_test_gives_make_the_api_and_the_options(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(pipelines={"deals": (ESCALATIONS, ONBOARDING)})
    assert [p["id"] for p in pipelines_of(box, "deals")] == ["onboarding", "escalations"]
    assert [v for v, _ in options(box, "deals", "dealstage")] == [
        "kickoff",
        "live",
        "raised",
        "solved",
    ]
    # Tickets were not given pipelines: they have none, nor pipeline properties.
    assert call(box, "GET", f"{PIPELINES}/tickets").status_code == 400
    props = call(box, "GET", "/crm/properties/2026-03/tickets").json()["results"]
    assert "hs_pipeline_stage" not in [p["name"] for p in props]


# --- stages checked on writes ---------------------------------------------------------------


def write(box: Sandbox, object_type: str, operation: str, inputs: list[dict[str, Any]]) -> Any:
    traced = [{**item, "objectWriteTraceId": f"t{n}"} for n, item in enumerate(inputs)]
    r = call(box, "POST", f"{V}/{object_type}/batch/{operation}", {"inputs": traced})
    assert r.status_code in (200, 201, 207), r.text
    return r.json()


def refusals(body: Any) -> dict[str, tuple[str, str, str]]:
    """Trace id -> (code, property, message) of each refused input."""
    out = {}
    for err in body.get("errors", []):
        (detail,) = err["errors"]
        trace = err["context"]["objectWriteTraceId"][0]
        out[trace] = (detail["code"], detail["context"]["propertyName"][0], detail["message"])
    return out


def test_a_stage_must_be_one_of_the_pipeline_the_input_gives(sandbox: Sandbox) -> None:
    body = write(
        sandbox,
        "deals",
        "create",
        [
            {"properties": {"dealname": "A", "dealstage": "closedwon"}},  # default pipeline
            {"properties": {"dealname": "B", "pipeline": RENEWALS, "dealstage": "75123459"}},
            {"properties": {"dealname": "C", "pipeline": RENEWALS, "dealstage": "closedwon"}},
            {"properties": {"dealname": "D", "dealstage": "75123459"}},  # Renewals' stage
            {"properties": {"dealname": "E", "pipeline": "999", "dealstage": "closedwon"}},
            {"properties": {"dealname": "F", "dealstage": "Closed won"}},  # a label, not an id
        ],
    )
    assert sorted(r["properties"]["dealname"] for r in body["results"]) == ["A", "B"]
    refused = refusals(body)
    assert set(refused) == {"t2", "t3", "t4", "t5"}
    code, prop, message = refused["t2"]
    assert (code, prop) == ("INVALID_PIPELINE_STAGE", "dealstage")
    assert "closedwon" in message
    assert RENEWALS in message
    code, prop, message = refused["t3"]
    assert (code, prop) == ("INVALID_PIPELINE_STAGE", "dealstage")
    assert "75123459" in message
    assert "default" in message
    assert refused["t4"][:2] == ("INVALID_OPTION", "pipeline")  # no such pipeline
    assert refused["t5"][:2] == ("INVALID_OPTION", "dealstage")


def test_an_update_without_a_pipeline_is_checked_against_the_records(sandbox: Sandbox) -> None:
    created = write(
        sandbox,
        "deals",
        "create",
        [{"properties": {"dealname": "R", "pipeline": RENEWALS, "dealstage": "75123457"}}],
    )
    rid = created["results"][0]["id"]
    body = write(
        sandbox,
        "deals",
        "update",
        [
            {"id": rid, "properties": {"dealstage": "closedwon"}},
            {"id": "2001", "properties": {"dealstage": "closedwon"}},  # no pipeline: default
        ],
    )
    assert refusals(body).keys() == {"t0"}
    assert refusals(body)["t0"][0] == "INVALID_PIPELINE_STAGE"
    moved = write(
        sandbox, "deals", "update", [{"id": rid, "properties": {"dealstage": "75123459"}}]
    )
    assert moved["results"][0]["properties"]["dealstage"] == "75123459"
    back = write(
        sandbox,
        "deals",
        "update",
        [{"id": rid, "properties": {"pipeline": "default", "dealstage": "closedlost"}}],
    )
    assert "errors" not in back


def test_an_upsert_is_checked_against_the_pipeline_of_the_record_it_finds(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(pipelines={"orders": (ONBOARDING, ESCALATIONS)})
    write(
        box,
        "orders",
        "create",
        [
            {
                "properties": {
                    "hs_external_order_id": "EXT-1",
                    "hs_pipeline": "escalations",
                    "hs_pipeline_stage": "raised",
                }
            }
        ],
    )
    body = write(
        box,
        "orders",
        "upsert",
        [
            {"id": "EXT-1", "idProperty": "hs_external_order_id", "properties": {}},
            {"id": "EXT-2", "idProperty": "hs_external_order_id", "properties": {}},
        ],
    )
    assert "errors" not in body
    body = write(
        box,
        "orders",
        "upsert",
        [
            # EXT-1 is in Escalations: Kick-off is Onboarding's.
            {
                "id": "EXT-1",
                "idProperty": "hs_external_order_id",
                "properties": {"hs_pipeline_stage": "kickoff"},
            },
            # EXT-2 was made without a pipeline: it is in the first, Onboarding.
            {
                "id": "EXT-2",
                "idProperty": "hs_external_order_id",
                "properties": {"hs_pipeline_stage": "solved"},
            },
            # A new record without a pipeline is in the first one too.
            {
                "id": "EXT-3",
                "idProperty": "hs_external_order_id",
                "properties": {"hs_pipeline_stage": "kickoff"},
            },
        ],
    )
    refused = refusals(body)
    assert set(refused) == {"t0", "t1"}
    assert refused["t0"][:2] == ("INVALID_PIPELINE_STAGE", "hs_pipeline_stage")
    assert "escalations" in refused["t0"][2]
    assert "onboarding" in refused["t1"][2]
    (made,) = body["results"]
    assert made["properties"]["hs_external_order_id"] == "EXT-3"
