"""The sandbox keeps HubSpot's rules that a batch answer alone does not show: a contact create
that meets an email HubSpot holds is refused whole (409), a line item takes its values from the
product it names (and is refused for a product that is not there), and a USER_DEFINED label is
a pair of type ids, one each way, read from both ends."""

from __future__ import annotations

from typing import Any

from importer.sandbox import AssociationLabel, Sandbox

from .test_sandbox_associations import read
from .test_sandbox_fidelity import call, conforms

V = "/crm/objects/2026-03"
A = "/crm/associations/2026-03"


def contact(email: str, trace: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"properties": {"email": email}, "associations": []}
    if trace is not None:
        item["objectWriteTraceId"] = trace
    return item


def emails(box: Sandbox) -> list[str]:
    return sorted(r["properties"]["email"] for r in box.records("contacts"))


def make_product(box: Sandbox, **props: str) -> str:
    r = call(box, "POST", f"{V}/products/batch/create", {"inputs": [{"properties": props}]})
    assert r.status_code == 201, r.text
    return str(r.json()["results"][0]["id"])


def line_item(product_id: str, trace: str, **props: str) -> dict[str, Any]:
    return {
        "properties": {"hs_product_id": product_id, "quantity": "2", **props},
        "associations": [],
        "objectWriteTraceId": trace,
    }


# --- contacts: an email HubSpot holds refuses the whole create ----------------------------------


def test_a_contact_create_meeting_a_held_email_is_refused_whole_with_409(sandbox: Sandbox) -> None:
    before = emails(sandbox)
    inputs = [
        contact("new.one@example.com", "a"),
        contact("ada.lovelace@example.com", "b"),  # seeded contact 1001
        contact("new.two@example.com", "c"),
    ]
    r = call(sandbox, "POST", f"{V}/contacts/batch/create", {"inputs": inputs})
    assert r.status_code == 409, r.text
    body = r.json()
    assert set(body) == {"status", "message", "correlationId", "category"}
    assert r.headers["X-HubSpot-Correlation-Id"] == body["correlationId"]
    assert (body["status"], body["category"]) == ("error", "CONFLICT")
    assert body["message"] == "Contact already exists. Existing ID: 1001"
    assert emails(sandbox) == before  # nothing of the batch was written


def test_an_email_differing_only_in_case_and_spaces_is_the_held_one(sandbox: Sandbox) -> None:
    before = emails(sandbox)
    inputs = [contact("someone@example.com"), contact("  ALAN.Turing@Example.COM ")]
    r = call(sandbox, "POST", f"{V}/contacts/batch/create", {"inputs": inputs})
    assert r.status_code == 409, r.text
    assert r.json()["message"] == "Contact already exists. Existing ID: 1002"
    assert emails(sandbox) == before


def test_the_first_held_email_of_the_batch_is_the_one_named(sandbox: Sandbox) -> None:
    inputs = [contact("grace.hopper@example.com"), contact("ada.lovelace@example.com")]
    r = call(sandbox, "POST", f"{V}/contacts/batch/create", {"inputs": inputs})
    assert r.status_code == 409
    assert r.json()["message"] == "Contact already exists. Existing ID: 1003"


def test_one_email_given_twice_in_a_batch_refuses_it_whole(sandbox: Sandbox) -> None:
    before = emails(sandbox)
    inputs = [contact("twin@example.com", "a"), contact("other@example.com", "b")]
    inputs.append(contact("TWIN@example.com", "c"))
    r = call(sandbox, "POST", f"{V}/contacts/batch/create", {"inputs": inputs})
    assert r.status_code == 409, r.text
    assert r.json()["category"] == "CONFLICT"
    assert r.json()["message"].startswith("Contact already exists. inputs[0] and inputs[2] ")
    assert emails(sandbox) == before


def test_a_contact_batch_without_held_emails_is_created(sandbox: Sandbox) -> None:
    r = call(
        sandbox,
        "POST",
        f"{V}/contacts/batch/create",
        {"inputs": [contact("Mary.Shelley@Example.com"), contact("percy@example.com")]},
    )
    assert r.status_code == 201, r.text
    conforms(r.json(), "BatchResponseSimplePublicObject")
    made = sorted(x["properties"]["email"] for x in r.json()["results"])
    assert made == ["mary.shelley@example.com", "percy@example.com"]


def test_other_unique_properties_still_refuse_input_by_input(sandbox: Sandbox) -> None:
    make_product(sandbox, name="Held", hs_sku="S-1")
    inputs = [
        {"properties": {"name": "A", "hs_sku": "S-1"}, "objectWriteTraceId": "a"},
        {"properties": {"name": "B", "hs_sku": "S-2"}, "objectWriteTraceId": "b"},
    ]
    r = call(sandbox, "POST", f"{V}/products/batch/create", {"inputs": inputs})
    assert r.status_code == 207, r.text
    (err,) = r.json()["errors"]
    assert (err["category"], err["context"]["objectWriteTraceId"]) == ("CONFLICT", ["a"])
    assert [x["properties"]["hs_sku"] for x in r.json()["results"]] == ["S-2"]


# --- line items: the product's values, and no line item of a product that is not there ---------


def test_a_line_item_takes_its_products_name_price_and_description(sandbox: Sandbox) -> None:
    product = make_product(
        sandbox, name="Hoodie", price="45", description="Grey, cotton", hs_sku="H-1"
    )
    r = call(
        sandbox,
        "POST",
        f"{V}/line_items/batch/create",
        {
            "inputs": [
                line_item(product, "a"),
                line_item(product, "b", name="Hoodie, gift", price="40"),
            ]
        },
    )
    assert r.status_code == 201, r.text
    held = {x["id"]: x["properties"] for x in sandbox.records("line_items")}
    taken, own = sorted(held.values(), key=lambda p: p["name"])
    assert (taken["name"], taken["price"], taken["description"]) == ("Hoodie", "45", "Grey, cotton")
    assert (own["name"], own["price"], own["description"]) == ("Hoodie, gift", "40", "Grey, cotton")
    assert taken["quantity"] == "2"


def test_a_line_item_of_a_missing_product_is_refused_for_that_input(sandbox: Sandbox) -> None:
    product = make_product(sandbox, name="Mug", price="12")
    inputs = [line_item(product, "a"), line_item("999999999", "b")]
    r = call(sandbox, "POST", f"{V}/line_items/batch/create", {"inputs": inputs})
    assert r.status_code == 207, r.text
    conforms(r.json(), "BatchResponseSimplePublicObjectWithErrors")
    (err,) = r.json()["errors"]
    assert err["category"] == "VALIDATION_ERROR"
    assert err["context"]["objectWriteTraceId"] == ["b"]
    assert err["context"]["propertyName"] == ["hs_product_id"]
    assert [x["properties"]["name"] for x in sandbox.records("line_items")] == ["Mug"]


def test_a_line_item_of_a_product_archived_before_it_is_refused(sandbox: Sandbox) -> None:
    product = make_product(sandbox, name="Scarf", price="7")
    archive = {"inputs": [{"id": product}]}
    assert call(sandbox, "POST", f"{V}/products/batch/archive", archive).status_code == 204
    r = call(sandbox, "POST", f"{V}/line_items/batch/create", {"inputs": [line_item(product, "a")]})
    assert r.status_code == 207, r.text
    assert r.json()["errors"][0]["context"]["propertyName"] == ["hs_product_id"]
    assert sandbox.records("line_items") == []


def test_without_trace_ids_a_missing_product_fails_the_whole_batch(sandbox: Sandbox) -> None:
    product = make_product(sandbox, name="Mug", price="12")
    inputs = [{"properties": {"hs_product_id": product}}, {"properties": {"hs_product_id": "1"}}]
    r = call(sandbox, "POST", f"{V}/line_items/batch/create", {"inputs": inputs})
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith("Property values were not valid: ")
    assert sandbox.records("line_items") == []


def test_an_update_to_another_product_takes_its_values_and_checks_it(sandbox: Sandbox) -> None:
    first = make_product(sandbox, name="Mug", price="12", description="White")
    second = make_product(sandbox, name="Cup", price="9", description="Blue")
    r = call(sandbox, "POST", f"{V}/line_items/batch/create", {"inputs": [line_item(first, "a")]})
    (item,) = r.json()["results"]
    path = f"{V}/line_items/batch/update"

    keep = {"inputs": [{"id": item["id"], "properties": {"hs_product_id": first, "price": "11"}}]}
    assert call(sandbox, "POST", path, keep).status_code == 200
    assert sandbox.store.get("line_items", item["id"])["properties"]["name"] == "Mug"

    move = {"inputs": [{"id": item["id"], "properties": {"hs_product_id": second}}]}
    assert call(sandbox, "POST", path, move).status_code == 200
    moved = sandbox.store.get("line_items", item["id"])["properties"]
    assert (moved["name"], moved["price"], moved["description"]) == ("Cup", "9", "Blue")

    gone = {"inputs": [{"id": item["id"], "properties": {"hs_product_id": "42"}}]}
    r = call(sandbox, "POST", path, gone)
    assert r.status_code == 400, r.text
    assert sandbox.store.get("line_items", item["id"])["properties"]["hs_product_id"] == second


# --- USER_DEFINED labels: a pair of type ids, one each way --------------------------------------


def labels(box: Sandbox, from_type: str, to_type: str) -> list[tuple[str, int, str | None]]:
    r = call(box, "GET", f"{A}/{from_type}/{to_type}/labels")
    assert r.status_code == 200, r.text
    conforms(r.json(), "CollectionResponseAssociationSpecWithLabelNoPaging")
    return sorted((x["category"], x["typeId"], x.get("label")) for x in r.json()["results"])


def test_a_user_label_lists_from_both_ends_with_each_directions_id(sandbox: Sandbox) -> None:
    assert labels(sandbox, "carts", "contacts") == [
        ("HUBSPOT_DEFINED", 586, None),
        ("USER_DEFINED", 12, "Primary buyer"),
    ]
    assert labels(sandbox, "contacts", "carts") == [
        ("HUBSPOT_DEFINED", 587, None),
        ("USER_DEFINED", 13, "Primary buyer"),
    ]
    assert ("USER_DEFINED", 14, "Decision maker") in labels(sandbox, "deals", "contacts")
    assert ("USER_DEFINED", 15, "Decision maker") in labels(sandbox, "contacts", "deals")


def new_cart(box: Sandbox) -> str:
    body = {"inputs": [{"properties": {"hs_cart_name": "c"}, "associations": []}]}
    r = call(box, "POST", f"{V}/carts/batch/create", body)
    assert r.status_code == 201, r.text
    return str(r.json()["results"][0]["id"])


def test_a_label_made_from_one_end_reads_from_the_other_with_its_id(sandbox: Sandbox) -> None:
    cart = new_cart(sandbox)
    types = [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 586},
        {"associationCategory": "USER_DEFINED", "associationTypeId": 12},
    ]
    body = {"inputs": [{"from": {"id": cart}, "to": {"id": "1001"}, "types": types}]}
    r = call(sandbox, "POST", f"{A}/carts/contacts/batch/create", body)
    assert r.status_code in (200, 201), r.text
    assert read(sandbox, "carts", "contacts", cart) == {
        cart: {"1001": [("HUBSPOT_DEFINED", 586), ("USER_DEFINED", 12)]}
    }
    assert read(sandbox, "contacts", "carts", "1001") == {
        "1001": {cart: [("HUBSPOT_DEFINED", 587), ("USER_DEFINED", 13)]}
    }
    got = call(sandbox, "GET", f"{V}/contacts/1001", params={"associations": "carts"}).json()
    kinds = {x["type"] for x in got["associations"]["carts"]["results"]}
    assert kinds == {"contact_to_cart", "13"}


def test_a_label_made_with_the_other_directions_id_reads_from_both_ends(sandbox: Sandbox) -> None:
    cart = new_cart(sandbox)
    types = [{"associationCategory": "USER_DEFINED", "associationTypeId": 13}]
    body = {"inputs": [{"from": {"id": "1002"}, "to": {"id": cart}, "types": types}]}
    r = call(sandbox, "POST", f"{A}/contacts/carts/batch/create", body)
    assert r.status_code in (200, 201), r.text
    assert r.json()["results"][0]["labels"] == ["Primary buyer"]
    assert read(sandbox, "contacts", "carts", "1002") == {"1002": {cart: [("USER_DEFINED", 13)]}}
    assert read(sandbox, "carts", "contacts", cart) == {cart: {"1002": [("USER_DEFINED", 12)]}}

    # The pair is one link: made again from the other end, nothing is added; removed from
    # either end, it is gone from both.
    again = [{"associationCategory": "USER_DEFINED", "associationTypeId": 12}]
    body = {"inputs": [{"from": {"id": cart}, "to": {"id": "1002"}, "types": again}]}
    call(sandbox, "POST", f"{A}/carts/contacts/batch/create", body)
    assert read(sandbox, "carts", "contacts", cart) == {cart: {"1002": [("USER_DEFINED", 12)]}}
    r = call(sandbox, "POST", f"{A}/carts/contacts/batch/labels/archive", body)
    assert r.status_code in (200, 204), r.text
    assert read(sandbox, "contacts", "carts", "1002") == {"1002": {}}


def test_a_label_with_no_other_half_reads_from_its_own_end_only(sandbox: Sandbox) -> None:
    sandbox.portal.labels.append(
        AssociationLabel(
            from_type="carts",
            to_type="contacts",
            category="USER_DEFINED",
            type_id=31,
            label="Gift recipient",
        )
    )
    cart = new_cart(sandbox)
    types = [{"associationCategory": "USER_DEFINED", "associationTypeId": 31}]
    body = {"inputs": [{"from": {"id": cart}, "to": {"id": "1003"}, "types": types}]}
    assert call(sandbox, "POST", f"{A}/carts/contacts/batch/create", body).status_code in (200, 201)
    assert read(sandbox, "carts", "contacts", cart) == {cart: {"1003": [("USER_DEFINED", 31)]}}
    assert read(sandbox, "contacts", "carts", "1003") == {"1003": {}}
