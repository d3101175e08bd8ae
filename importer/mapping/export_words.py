"""The column headers common exports write, and the HubSpot property each means (`init`).

Shops, feeds and mailing tools name their columns their own way ("Variant SKU", "Regular
price", "image_link", "Email Address"), and HubSpot's own exports write property labels
("Unit price", "Product description"). The table below, per object type and per export, maps
each header to the HubSpot default properties it means, preferred first; a header that means
nothing in HubSpot maps to none, and still tells which export the sheet is. The columns come
from each export's public column list. Every target is a HubSpot default property name (or,
for `brand` and `vendor`, a property a portal adds with that name or label): `init` proposes
one only where the portal has it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["UNMAPPED_WHY", "ExportWord", "detect_export", "export_words", "letters"]

# header -> the properties it means, preferred first, separated by spaces ("" means none).
_Table = dict[str, dict[str, str]]

_PRODUCTS: _Table = {
    "Shopify": {
        # The classic product export (36 columns) and the 2024 one ("URL handle", "SKU", ...).
        "Handle": "",
        "URL handle": "",
        "Title": "name",
        "Body (HTML)": "description",
        "Description": "description",
        "Vendor": "vendor brand",
        "Product Category": "",
        "Type": "",
        "Tags": "",
        "Published": "",
        "Published on online store": "",
        "Option1 Name": "",
        "Option1 Value": "",
        "Option2 Name": "",
        "Option2 Value": "",
        "Option3 Name": "",
        "Option3 Value": "",
        "Variant SKU": "hs_sku",
        "SKU": "hs_sku",
        "Variant Grams": "",
        "Weight value (grams)": "",
        "Variant Inventory Tracker": "",
        "Variant Inventory Qty": "",
        "Inventory quantity": "",
        "Variant Inventory Policy": "",
        "Variant Fulfillment Service": "",
        "Variant Price": "price",
        "Price": "price",
        "Variant Compare At Price": "",
        "Compare-at price": "",
        "Variant Requires Shipping": "",
        "Variant Taxable": "",
        "Charge tax": "",
        "Variant Barcode": "",
        "Barcode": "",
        # On a variant's row "Image Src" is the product's n-th image, not the variant's own.
        "Image Src": "",
        "Product image URL": "",
        "Variant Image": "hs_images",
        "Variant image URL": "hs_images",
        "Image Position": "",
        "Image Alt Text": "",
        "Gift Card": "",
        "SEO Title": "",
        "SEO Description": "",
        "Variant Weight Unit": "",
        "Variant Tax Code": "",
        "Cost per item": "hs_cost_of_goods_sold",
        "Status": "",
        "Inventory tracker": "",
        "Continue selling when out of stock": "",
        "Weight unit for display": "",
        "Requires shipping": "",
        "Fulfillment service": "",
        "Tax code": "",
    },
    "WooCommerce": {
        "ID": "",
        "Type": "",
        "SKU": "hs_sku",
        "Name": "name",
        "Published": "",
        "Is featured?": "",
        "Visibility in catalog": "",
        "Short description": "",
        "Description": "description",
        "Tax status": "",
        "Tax class": "",
        "In stock?": "",
        "Stock": "",
        "Backorders allowed?": "",
        "Sale price": "",
        "Regular price": "price",
        "Categories": "",
        "Tags": "",
        "Shipping class": "",
        "Images": "hs_images",
        "Parent": "",
        "External URL": "",
        "Attribute 1 name": "",
        "Attribute 1 value(s)": "",
    },
    "BigCommerce": {
        "Item Type": "",
        "Product ID": "",
        "Product Name": "name",
        "Product Type": "",
        "Product Code/SKU": "hs_sku",
        "Brand Name": "brand",
        "Product Description": "description",
        "Price": "price",
        "Cost Price": "hs_cost_of_goods_sold",
        "Retail Price": "",
        "Sale Price": "",
        "Product Weight": "",
        "Current Stock Level": "",
        "Product Visible?": "",
        "Track Inventory": "",
        "Category": "",
        "Product URL": "hs_url",
        "Product Image File - 1": "hs_images",
        "Product Image URL - 1": "hs_images",
    },
    "Magento": {
        "sku": "hs_sku",
        "name": "name",
        "description": "description",
        "short_description": "",
        "price": "price",
        "cost": "hs_cost_of_goods_sold",
        "special_price": "",
        "url_key": "hs_url",
        "weight": "",
        "qty": "",
        "product_type": "",
        "attribute_set_code": "",
        "product_websites": "",
        "categories": "",
        "base_image": "hs_images",
        "visibility": "",
        "product_online": "",
        "meta_title": "",
        "meta_description": "",
    },
    "Google Merchant": {
        "id": "hs_sku",
        "title": "name",
        "description": "description",
        "link": "hs_url",
        "image_link": "hs_images",
        "additional_image_link": "",
        "price": "price",
        "sale_price": "",
        "cost_of_goods_sold": "hs_cost_of_goods_sold",
        "brand": "brand",
        "gtin": "",
        "mpn": "hs_sku",
        "availability": "",
        "condition": "",
        "google_product_category": "",
        "product_type": "",
        "item_group_id": "",
        "shipping_weight": "",
    },
    "HubSpot": {
        # HubSpot's own export writes the labels of the properties it exports.
        "Record ID": "hs_object_id",
        "Name": "name",
        "Product description": "description",
        "Unit price": "price",
        "SKU": "hs_sku",
        "Unit cost": "hs_cost_of_goods_sold",
        "Product type": "hs_product_type",
        "URL": "hs_url",
        "Image URL": "hs_images",
        "Term": "hs_recurring_billing_period",
        "Billing frequency": "recurringbillingfrequency",
        "Tax": "tax",
        "Create Date": "",
        "Last Modified Date": "",
    },
}

_CONTACTS: _Table = {
    "Mailchimp": {
        "Email Address": "email",
        "First Name": "firstname",
        "Last Name": "lastname",
        # Mailchimp writes the whole address (street, city, region, postcode) in one cell.
        "Address": "",
        "Phone Number": "phone",
        "Company": "company",
        "Birthday": "date_of_birth",
        "CC": "country",
        "REGION": "state",
        "MEMBER_RATING": "",
        "OPTIN_TIME": "",
        "OPTIN_IP": "",
        "CONFIRM_TIME": "",
        "CONFIRM_IP": "",
        "LATITUDE": "",
        "LONGITUDE": "",
        "GMTOFF": "",
        "DSTOFF": "",
        "TIMEZONE": "",
        "LAST_CHANGED": "",
        "LEID": "",
        "EUID": "",
        "NOTES": "",
        "TAGS": "",
    },
    "Shopify": {
        # The customers export, classic and 2024 ("Default Address ...").
        "Customer ID": "",
        "First Name": "firstname",
        "Last Name": "lastname",
        "Email": "email",
        "Accepts Email Marketing": "",
        "Company": "company",
        "Default Address Company": "company",
        "Address1": "address",
        "Default Address Address1": "address",
        "City": "city",
        "Default Address City": "city",
        "Province": "state",
        "Province Code": "state",
        "Default Address Province Code": "state",
        "Country": "country",
        "Country Code": "country",
        "Default Address Country Code": "country",
        "Zip": "zip",
        "Default Address Zip": "zip",
        "Phone": "phone",
        "Default Address Phone": "phone",
        "Accepts SMS Marketing": "",
        "Total Spent": "",
        "Total Orders": "",
        "Tags": "",
        "Note": "",
        "Tax Exempt": "",
    },
    "HubSpot": {
        "Record ID": "hs_object_id",
        "First Name": "firstname",
        "Last Name": "lastname",
        "Email": "email",
        "Phone Number": "phone",
        "Mobile Phone Number": "mobilephone",
        "Street Address": "address",
        "City": "city",
        "State/Region": "state",
        "Postal Code": "zip",
        "Country/Region": "country",
        "Company Name": "company",
        "Job Title": "jobtitle",
        "Website URL": "website",
        "Lifecycle Stage": "lifecyclestage",
        "Contact owner": "hubspot_owner_id",
        "Create Date": "",
        "Last Activity Date": "",
    },
}

_ORDERS: _Table = {
    "Shopify": {
        # The orders export: one row per line item, the order's own columns on its first.
        "Name": "hs_order_name",
        "Id": "hs_external_order_id",
        "Email": "",
        "Financial Status": "",
        "Fulfillment Status": "hs_fulfillment_status",
        "Currency": "hs_currency_code",
        "Subtotal": "hs_subtotal_price",
        "Shipping": "hs_shipping_cost",
        "Taxes": "hs_tax",
        "Total": "hs_total_price",
        "Discount Amount": "hs_order_discount",
        "Created at": "hs_external_created_date",
        "Lineitem name": "",
        "Lineitem quantity": "",
    },
}

_LINE_ITEMS: _Table = {
    "Shopify": {
        "Name": "",
        "Lineitem name": "name",
        "Lineitem quantity": "quantity",
        "Lineitem price": "price",
        "Lineitem sku": "hs_sku",
        "Lineitem discount": "discount",
    },
}

UNMAPPED_WHY = {
    ("Shopify", "Image Src"): "is the product's n-th image on a variant's row, not the "
    "variant's own: Variant Image is",
    ("Shopify", "Product image URL"): "is the product's n-th image on a variant's row, not the "
    "variant's own: Variant image URL is",
    ("Mailchimp", "Address"): "holds the whole address in one cell (street, city, region, "
    "postcode): HubSpot keeps each in a property of its own",
}
"""Why an export's header that looks like a property's is left unmapped."""

TABLES: dict[str, _Table] = {
    "products": _PRODUCTS,
    "contacts": _CONTACTS,
    "orders": _ORDERS,
    "line_items": _LINE_ITEMS,
}
"""Object type -> export -> header -> the properties it means."""
MIN_HITS = 3
"""Headers of one export's own a sheet must have before it is taken for that export."""


@dataclass(frozen=True, kw_only=True)
class ExportWord:
    """One export's header and the HubSpot properties it means, preferred first."""

    export: str
    header: str
    targets: tuple[str, ...]
    rank: int
    """Its place among the export's headers for the same property: 0 is preferred ("Image
    Src" over "Image Alt Text" for one property)."""


def letters(text: str) -> str:
    """A header as headers are compared: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]+", "", text.casefold())


def _index() -> dict[str, dict[str, list[ExportWord]]]:
    """Object type -> a header's letters -> the export words it may be."""
    index: dict[str, dict[str, list[ExportWord]]] = {}
    for object_type, exports in TABLES.items():
        by_letters = index.setdefault(object_type, {})
        for export, headers in exports.items():
            seen: dict[str, int] = {}
            for header, meaning in headers.items():
                targets = tuple(meaning.split())
                rank = seen.get(targets[0], 0) if targets else 0
                if targets:
                    seen[targets[0]] = rank + 1
                word = ExportWord(export=export, header=header, targets=targets, rank=rank)
                by_letters.setdefault(letters(header), []).append(word)
    return index


_INDEX = _index()


def export_words(column: str, object_type: str) -> list[ExportWord]:
    """The export headers `column` may be (any export's), for one object type."""
    return list(_INDEX.get(object_type, {}).get(letters(column), []))


def detect_export(columns: list[str], object_type: str) -> str | None:
    """The export the sheet comes from: the one with the most of the sheet's headers that no
    other export writes (at least MIN_HITS of them, and more than any other export), or None.
    Headers several exports write ("SKU", "Price", "Name") tell nothing."""
    hits: dict[str, int] = {}
    for column in dict.fromkeys(letters(c) for c in columns):
        exports = {w.export for w in _INDEX.get(object_type, {}).get(column, [])}
        if len(exports) == 1:
            (export,) = exports
            hits[export] = hits.get(export, 0) + 1
    ranked = sorted(hits.items(), key=lambda kv: -kv[1])
    if not ranked or ranked[0][1] < MIN_HITS:
        return None
    if len(ranked) > 1 and ranked[1][1] == ranked[0][1]:
        return None
    return ranked[0][0]
