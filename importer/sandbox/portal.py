"""The sandbox portal's schema: object types, property definitions, association labels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..core.hubspot import (
    DEFAULT_ASSOCIATION_TYPES,
    OBJECT_TYPE_IDS,
    OWNER_PROPERTY,
    canonical_object_type,
    reverse_type_id,
)

__all__ = [
    "AssociationLabel",
    "Portal",
    "PropertyDef",
    "default_inverse_type_id",
    "default_portal",
]


@dataclass(frozen=True, kw_only=True)
class PropertyDef:
    name: str
    label: str
    type: str = "string"  # string, number, date, datetime, bool, enumeration
    field_type: str = "text"
    options: tuple[str, ...] = ()
    option_labels: tuple[tuple[str, str], ...] = ()
    """(value, label) of options whose label is not their value in title case."""
    unique: bool = False
    read_only: bool = False
    calculated: bool = False
    external_options: bool = False
    """Its values are kept outside its definition (an owner's id): it lists no options."""
    referenced_object_type: str | None = None
    """What its values are the ids of (OWNER for an owner property)."""
    number_display_hint: str | None = None
    """A number property's: formatted (the default), unformatted, currency, percentage,
    probability (stored as 0..1) or duration."""

    def as_json(self, object_type: str, order: int = 0) -> dict[str, object]:
        """The definition as HubSpot's properties API answers it."""
        extra: dict[str, object] = {}
        if self.referenced_object_type is not None:
            extra["referencedObjectType"] = self.referenced_object_type
        if self.type == "number":
            extra["numberDisplayHint"] = self.number_display_hint or "formatted"
        labels = dict(self.option_labels)
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": "",
            "groupName": f"{object_type.rstrip('s')}information",
            "displayOrder": order,
            "formField": not (self.read_only or self.calculated),
            "hidden": False,
            "options": [
                {
                    "label": labels.get(o) or o.replace("_", " ").title(),
                    "value": o,
                    "description": "",
                    "displayOrder": i,
                    "hidden": False,
                }
                for i, o in enumerate(self.options)
            ],
            "hasUniqueValue": self.unique,
            "calculated": self.calculated,
            "externalOptions": self.external_options,
            "modificationMetadata": {
                "readOnlyValue": self.read_only,
                "archivable": True,
                "readOnlyDefinition": self.read_only,
            },
            **extra,
        }


@dataclass(frozen=True, kw_only=True)
class AssociationLabel:
    from_type: str
    to_type: str
    category: str
    type_id: int
    label: str | None = None
    inverse_type_id: int | None = None
    """The type id of the same label from `to_type` to `from_type`: HubSpot makes a label
    between two object types as a pair, a type id for each direction."""


_FIELD_TYPES = {
    "number": "number",
    "date": "date",
    "datetime": "date",
    "bool": "booleancheckbox",
    "enumeration": "select",
}


def _p(
    name: str,
    label: str,
    type_: str = "string",
    *,
    field_type: str | None = None,
    options: tuple[str, ...] = (),
    unique: bool = False,
    read_only: bool = False,
    calculated: bool = False,
    hint: str | None = None,
) -> PropertyDef:
    return PropertyDef(
        name=name,
        label=label,
        type=type_,
        field_type=field_type or _FIELD_TYPES.get(type_, "text"),
        options=options,
        unique=unique,
        read_only=read_only,
        calculated=calculated,
        number_display_hint=hint,
    )


def _owner(label: str) -> PropertyDef:
    """A record's owner property (hubspot_owner_id): its values are the ids of the portal's
    owners, which the owners API lists, not options of its own."""
    return PropertyDef(
        name=OWNER_PROPERTY,
        label=label,
        type="enumeration",
        field_type="select",
        external_options=True,
        referenced_object_type="OWNER",
    )


_SYSTEM = (
    _p("hs_object_id", "Record ID", "number", read_only=True, unique=True, hint="unformatted"),
    _p("hs_merged_object_ids", "Merged record IDs", read_only=True),
    _p("createdate", "Create Date", "datetime", read_only=True),
    _p("hs_lastmodifieddate", "Last Modified Date", "datetime", read_only=True),
    # What made the record (sources.py): set by HubSpot on every create, never by a write.
    _p("hs_object_source", "Record creation source", read_only=True),
    _p("hs_object_source_id", "Record creation source ID", read_only=True),
    _p("hs_object_source_label", "Record source", read_only=True),
    _p(
        "hs_object_source_user_id",
        "Record creation source user ID",
        "number",
        read_only=True,
        hint="unformatted",
    ),
    _p("hs_created_by_user_id", "Created by user ID", "number", read_only=True, hint="unformatted"),
)
_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "DKK", "PLN", "JPY", "CAD", "AUD")

DEFAULT_PROPERTIES: dict[str, tuple[PropertyDef, ...]] = {
    "products": (
        _p("name", "Name"),
        _p("description", "Description", field_type="textarea"),
        _p("price", "Unit price", "number", hint="currency"),
        _p("hs_sku", "SKU", unique=True),
        _p("hs_cost_of_goods_sold", "Unit cost", "number", hint="currency"),
        _p(
            "hs_product_type",
            "Product type",
            "enumeration",
            options=("inventory", "non_inventory", "service"),
        ),
        _p("hs_url", "URL"),
        _p("hs_images", "Image URL"),
        _p("hs_recurring_billing_period", "Term"),
        _p(
            "recurringbillingfrequency",
            "Billing frequency",
            "enumeration",
            options=("weekly", "biweekly", "monthly", "quarterly", "per_six_months", "annually"),
        ),
        _p("tax", "Tax", "number"),
        _p("hs_folder_name", "Folder"),
        _owner("Owner"),
        # Custom properties this demo portal has, as most shops add a few.
        _p("brand", "Brand"),
        _p("launch_date", "Launch date", "date"),
        _p("in_stock", "In stock", "bool"),
        _p("weight_kg", "Weight (kg)", "number"),
        _p("margin_pct", "Margin (%)", "number", hint="percentage"),
    ),
    "carts": (
        _p("hs_cart_name", "Cart name"),
        _p("hs_external_cart_id", "External cart ID", unique=True),
        _p("hs_external_status", "External status"),
        _p(
            "hs_cart_status",
            "Cart status",
            "enumeration",
            options=("open", "abandoned", "converted", "expired"),
        ),
        _p("hs_source_store", "Source store"),
        _p("hs_total_price", "Total price", "number"),
        _p("hs_subtotal_price", "Subtotal price", "number"),
        _p("hs_cart_discount", "Discount", "number"),
        _p("hs_tax", "Tax", "number"),
        _p("hs_shipping_cost", "Shipping cost", "number"),
        _p("hs_currency_code", "Currency", "enumeration", options=_CURRENCIES),
        _p("hs_cart_url", "Cart URL"),
        _p("hs_external_created_date", "External created date", "datetime"),
        _p("hs_created_date", "Cart date", "date"),
        _p("paid", "Paid", "bool"),
        _owner("Owner"),
    ),
    "line_items": (
        _p("name", "Name"),
        _p("description", "Description", field_type="textarea"),
        _p("hs_product_id", "Product ID", "number"),
        _p("quantity", "Quantity", "number"),
        _p("price", "Unit price", "number"),
        _p("hs_sku", "SKU"),
        _p("discount", "Unit discount", "number"),
        _p("hs_line_item_currency_code", "Currency", "enumeration", options=_CURRENCIES),
        _p("hs_recurring_billing_start_date", "Billing start date", "date"),
        _p("amount", "Net price", "number", calculated=True, read_only=True),
    ),
    "contacts": (
        _p("email", "Email", unique=True),
        _p("firstname", "First name"),
        _p("lastname", "Last name"),
        _p("phone", "Phone number"),
        _p("company", "Company name"),
        _p("city", "City"),
        _p("country", "Country/Region"),
        _p(
            "lifecyclestage",
            "Lifecycle stage",
            "enumeration",
            options=(
                "subscriber",
                "lead",
                "marketingqualifiedlead",
                "salesqualifiedlead",
                "opportunity",
                "customer",
                "evangelist",
                "other",
            ),
        ),
        _p("date_of_birth", "Date of birth", "date"),
        _owner("Contact owner"),
        # More of HubSpot's default contact properties, with their labels.
        _p("address", "Street Address"),
        _p("state", "State/Region"),
        _p("zip", "Postal Code"),
        _p("mobilephone", "Mobile Phone Number"),
        _p("jobtitle", "Job Title"),
        _p("website", "Website URL"),
    ),
    "deals": (
        # pipeline and dealstage: from the portal's pipelines (pipelines.pipeline_defs).
        _p("dealname", "Deal name"),
        _p("amount", "Amount", "number", hint="currency"),
        _p("closedate", "Close date", "datetime"),
        _p("deal_currency_code", "Currency", "enumeration", options=_CURRENCIES),
        _owner("Deal owner"),
        _p("win_probability", "Win probability", "number", hint="probability"),
    ),
    "orders": (
        _p("hs_order_name", "Order name"),
        _p("hs_external_order_id", "External order ID", unique=True),
        _p("hs_total_price", "Total price", "number"),
        _p("hs_currency_code", "Currency", "enumeration", options=_CURRENCIES),
        _p("hs_fulfillment_status", "Fulfillment status"),
        _p("hs_external_created_date", "External created date", "datetime"),
        _owner("Owner"),
    ),
    "companies": (
        _p("name", "Company name"),
        _p("domain", "Company domain name"),
        _p("city", "City"),
        _p("country", "Country/Region"),
        _p("numberofemployees", "Number of employees", "number"),
        _p("founded_year", "Year founded"),
        _owner("Company owner"),
    ),
    "tickets": (
        _p("subject", "Ticket name"),
        _p("content", "Ticket description", field_type="textarea"),
        _p("hs_ticket_priority", "Priority", "enumeration", options=("LOW", "MEDIUM", "HIGH")),
        _owner("Ticket owner"),
    ),
    "quotes": (
        _p("hs_title", "Quote name"),
        _p("hs_expiration_date", "Expiration date", "date"),
        _p("hs_currency", "Currency", "enumeration", options=_CURRENCIES),
    ),
    "discounts": (
        _p("hs_label", "Label"),
        _p("hs_value", "Value", "number"),
        _p("hs_type", "Type", "enumeration", options=("PERCENT", "FIXED")),
    ),
    # The demo portal's custom object: 2-4242424, fully qualified name p4242424_pets.
    "p4242424_pets": (
        _p("name", "Name"),
        _p("species", "Species"),
        _p("birth_date", "Birth date", "date"),
        _p("weight_kg", "Weight (kg)", "number"),
        _p("chip_id", "Chip ID", unique=True),
    ),
}
CUSTOM_OBJECT_IDS = {"2-4242424": "p4242424_pets", "pets": "p4242424_pets"}
"""The custom object's other names: its type id, and its name as used in paths."""


def _label_pair(
    from_type: str, to_type: str, type_id: int, inverse: int, label: str
) -> tuple[AssociationLabel, AssociationLabel]:
    """A USER_DEFINED label as HubSpot makes it: one type id each way, the same label."""
    return (
        AssociationLabel(
            from_type=from_type,
            to_type=to_type,
            category="USER_DEFINED",
            type_id=type_id,
            label=label,
            inverse_type_id=inverse,
        ),
        AssociationLabel(
            from_type=to_type,
            to_type=from_type,
            category="USER_DEFINED",
            type_id=inverse,
            label=label,
            inverse_type_id=type_id,
        ),
    )


DEFAULT_USER_LABELS = (
    *_label_pair("carts", "contacts", 12, 13, "Primary buyer"),
    *_label_pair("deals", "contacts", 14, 15, "Decision maker"),
)


@dataclass(kw_only=True)
class Portal:
    """What one HubSpot account knows: its object types, properties and association labels."""

    portal_id: int = 4_242_424
    account_type: str = "SANDBOX"
    """What account details say of it: the demo portal is a sandbox account."""
    properties: dict[str, dict[str, PropertyDef]] = field(default_factory=dict)
    labels: list[AssociationLabel] = field(default_factory=list)
    custom_object_ids: dict[str, str] = field(default_factory=dict)
    """A custom object's type id (2-...) and short name -> its fully qualified name."""

    def object_type(self, name: str) -> str | None:
        """Canonical name of a type this portal has, or None (HubSpot: 'Unable to infer').
        A custom object exists only if the portal defines it, as in HubSpot."""
        canonical = self.custom_object_ids.get(name) or canonical_object_type(name)
        if canonical in self.properties:
            return canonical
        if canonical in OBJECT_TYPE_IDS:
            self.properties[canonical] = {p.name: p for p in _SYSTEM}
            return canonical
        return None

    def property_defs(self, object_type: str) -> dict[str, PropertyDef]:
        """The type's property definitions (every type the portal has, has some)."""
        return self.properties.get(object_type) or {p.name: p for p in _SYSTEM}

    def custom_type_id(self, object_type: str) -> str:
        """A custom object's type id (`2-4242424`), or the name back when it has none."""
        return next(
            (i for i, name in self.custom_object_ids.items() if name == object_type and "-" in i),
            object_type,
        )

    def label_of(self, from_type: str, to_type: str, category: str, type_id: int) -> str | None:
        """The label of an association type between two object types (None: unlabelled)."""
        return next(
            (
                lab.label
                for lab in self.labels
                if (lab.from_type, lab.to_type, lab.category, lab.type_id)
                == (from_type, to_type, category, type_id)
            ),
            None,
        )

    def association_target(self, from_type: str, category: str, type_id: int) -> str | None:
        """The object type an association type id points at from `from_type`, if valid."""
        if category == "HUBSPOT_DEFINED":
            for to, tid in DEFAULT_ASSOCIATION_TYPES.get(from_type, {}).items():
                if tid == type_id:
                    return to
            return None
        for label in self.labels:
            if (label.from_type, label.category, label.type_id) == (from_type, category, type_id):
                return label.to_type
        return None

    def inverse_type_id(
        self, from_type: str, to_type: str, category: str, type_id: int
    ) -> int | None:
        """The type id of an association read from its other end (None: it reads from its own
        end only, as a label the portal knows no other half of)."""
        return _inverse_type_id(self.labels, from_type, to_type, category, type_id)

    def association_labels(self, from_type: str, to_type: str) -> list[dict[str, object]]:
        """The association types from one object type to another, as the v4 labels API lists."""
        out: list[dict[str, object]] = []
        default = DEFAULT_ASSOCIATION_TYPES.get(from_type, {}).get(to_type)
        if default is not None:
            # HubSpot's unlabelled default type: no label (the spec's label is a string).
            out.append({"category": "HUBSPOT_DEFINED", "typeId": default})
        out += [
            {"category": lab.category, "typeId": lab.type_id, "label": lab.label}
            for lab in self.labels
            if (lab.from_type, lab.to_type) == (from_type, to_type)
        ]
        return out

    def add_property(self, object_type: str, prop: PropertyDef) -> None:
        self.properties.setdefault(canonical_object_type(object_type), {})[prop.name] = prop


def _inverse_type_id(
    labels: Iterable[AssociationLabel], from_type: str, to_type: str, category: str, type_id: int
) -> int | None:
    """The type id of an association seen from `to_type`: HubSpot's default types pair up as
    `reverse_type_id` says; a label by its `inverse_type_id` (None when it has none)."""
    if category == "HUBSPOT_DEFINED":
        return reverse_type_id(from_type, to_type, category, type_id)
    return next(
        (
            lab.inverse_type_id
            for lab in labels
            if (lab.from_type, lab.to_type, lab.category, lab.type_id)
            == (from_type, to_type, category, type_id)
        ),
        None,
    )


def default_inverse_type_id(
    from_type: str, to_type: str, category: str, type_id: int
) -> int | None:
    """`Portal.inverse_type_id` of the default portal, whose labels every portal of the
    sandbox starts with: what a store reads links by until it is told its portal's."""
    return _inverse_type_id(DEFAULT_USER_LABELS, from_type, to_type, category, type_id)


def default_portal(
    portal_id: int = 4_242_424,
    account_type: str | None = None,
    derived: Mapping[str, tuple[PropertyDef, ...]] | None = None,
) -> Portal:
    """The demo portal, with the properties `derived` from its settings (per object type:
    the pipeline and stage properties of its pipelines, a product's price per currency)."""
    more = derived or {}
    props = {
        name: {
            p.name: p for p in (*DEFAULT_PROPERTIES.get(name, ()), *more.get(name, ()), *_SYSTEM)
        }
        for name in dict.fromkeys((*DEFAULT_PROPERTIES, *more))
    }
    return Portal(
        portal_id=portal_id,
        account_type=account_type or "SANDBOX",
        properties=props,
        labels=list(DEFAULT_USER_LABELS),
        custom_object_ids=CUSTOM_OBJECT_IDS,
    )
