# ruff: noqa: RUF001  (non-ASCII dashes are the point of the demo data)
"""Rebuild the shipped demo data: data/products.xlsx and data/carts.csv (deterministic).

python scripts/make_demo_data.py          # every file
python scripts/make_demo_data.py shop     # data/shop.xlsx only
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import sys
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font

DATA = Path(__file__).resolve().parent.parent / "data"
PRODUCT_ROWS = 320
CART_ROWS = 60
SEED = 20261123

BRANDS = [
    "Nordlicht",
    "Café Olé",
    "Bergström & Söhne",
    "Açaí Co.",
    "Łódź Textiles",
    "Zoë's Kitchen",
    "Maison Lefèvre",
    "Tōkyō Goods",
]
ITEMS = [
    ("Hoodie", "Cotton hoodie, brushed inside"),
    ("T-shirt", 'Organic cotton tee, "relaxed" fit'),
    ("Mug", "Stoneware mug, 350 ml, dishwasher-safe"),
    ("Backpack", "Roll-top backpack, 22 l, waterproof"),
    ("Scarf", "Merino scarf – soft, warm, itch-free"),
    ("Notebook", "A5 notebook, dotted, 120 g/m² paper"),
    ("Water bottle", 'Steel bottle, 0.75 l, "keeps cold 24 h"'),
    ("Beanie", "Rib-knit beanie; one size"),
    ("Tote bag", "Canvas tote, 10 oz, natural"),
    ("Socks", "Crew socks, 3-pack, sizes 39–46"),
    ("Café blend", "Whole beans, 250 g — notes of cocoa, hazelnut"),
    ("Gift card", "Digital gift card, delivered by e-mail"),
]
COLOURS = ["black", "navy", "sand", "olive", "rust", "grey", "crème", "forest"]


def make_products(path: Path, rng: random.Random) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "Catalogue"
    header = [
        "SKU",
        "Name",
        "Description",
        "Price",
        "Unit cost",
        "Type",
        "Brand",
        "Launch date",
        "In stock",
        "Weight (kg)",
        "Product page",
    ]
    ws.append(header)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    launch = dt.date(2024, 1, 15)
    for n in range(PRODUCT_ROWS):
        item, description = ITEMS[n % len(ITEMS)]
        colour = COLOURS[(n // len(ITEMS)) % len(COLOURS)]
        service = item == "Gift card"
        price = round(rng.uniform(4, 180), 2) if not service else float(rng.choice([25, 50, 100]))
        if n % 7 == 0:
            price = float(int(price))  # whole numbers typed in Excel must read back as "45"
        row = [
            f"{n + 1:06d}",  # text cell: SKUs keep their leading zeros
            f"{item} – {colour}" if not service else f"{item} {int(price)} €",
            description if n % 11 else "",  # some descriptions left empty
            price,
            round(price * rng.uniform(0.3, 0.6), 2) if n % 5 else None,
            "service" if service else rng.choice(["inventory", "inventory", "non_inventory"]),
            rng.choice(BRANDS),
            launch + dt.timedelta(days=rng.randrange(0, 900)),
            rng.random() > 0.15,
            None if service or n % 9 == 0 else round(rng.uniform(0.05, 2.5), 3),
            f"https://shop.example.com/p/{n + 1:06d}",
        ]
        ws.append(row)
        r = ws.max_row
        ws.cell(r, 1).number_format = "@"
        ws.cell(r, 4).number_format = "#,##0.00"
        ws.cell(r, 8).number_format = "yyyy-mm-dd"
    ws.freeze_panes = "A2"
    for letter, width in zip(
        "ABCDEFGHIJK", (10, 26, 44, 10, 10, 14, 20, 12, 9, 11, 36), strict=True
    ):
        ws.column_dimensions[letter].width = width
    wb.save(path)


def make_carts(path: Path, rng: random.Random) -> None:
    contacts = [str(1001 + i) for i in range(20)]
    start = dt.date(2026, 10, 1)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["Cart ref", "Cart name", "Total", "Created", "Paid", "Status", "Store", "Contact ids"]
        )
        for n in range(CART_ROWS):
            ids = rng.sample(contacts, k=rng.choice([1, 1, 1, 2, 3]))
            if n % 13 == 5:
                ids = []  # a cart with no known buyer yet
            created = start + dt.timedelta(days=rng.randrange(0, 50))
            writer.writerow(
                [
                    f"C-{n + 1:05d}",
                    f"Web cart {n + 1}",
                    f"{rng.uniform(10, 600):.2f}",
                    created.strftime("%d/%m/%Y"),
                    rng.choice(["yes", "no"]),
                    rng.choice(["open", "abandoned", "converted", "converted"]),
                    rng.choice(["Online store", "Pop-up, Berlin", "Marché de Noël"]),
                    ";".join(ids),
                ]
            )


SHOP_PRODUCTS = 24
SHOP_ORDERS = 40
CUSTOMERS = [
    # The sandbox's demo contacts, as a shop's export writes them (case and spaces vary).
    "ada.lovelace@example.com",
    "Alan.Turing@example.com",
    "grace.hopper@example.com ",
    "LINUS.TORVALDS@EXAMPLE.COM",
    "margaret.hamilton@example.com",
    "dennis.ritchie@example.com",
    "barbara.liskov@example.com",
    "ken.thompson@example.com",
]


def make_shop(path: Path, rng: random.Random) -> None:
    """A whole shop export: Products, Orders (customers by email) and Order lines (products by
    SKU, orders by order reference), for `hubspot-import run --plan mappings/shop/plan.yaml`."""
    wb = Workbook()
    products = wb.active
    products.title = "Products"
    products.append(["SKU", "Name", "Price"])
    catalogue = []
    for i in range(SHOP_PRODUCTS):
        item, _ = ITEMS[i % len(ITEMS)]
        sku = f"SH-{i + 1:04d}"
        price = round(rng.uniform(5, 120), 2)
        catalogue.append((sku, f"{item} – shop {i + 1}", price))
        products.append([sku, f"{item} – shop {i + 1}", price])
    orders = wb.create_sheet("Orders")
    orders.append(["Order ref", "Customer email", "Placed", "Total"])
    lines = wb.create_sheet("Order lines")
    lines.append(["Line ref", "Order ref", "SKU", "Quantity", "Unit price"])
    for n in range(SHOP_ORDERS):
        ref = f"WEB-{10_001 + n}"
        picked = rng.sample(catalogue, rng.randint(1, 4))
        total = 0.0
        for k, (sku, _, price) in enumerate(picked, start=1):
            quantity = rng.randint(1, 3)
            total += quantity * price
            lines.append([f"{ref}/{k}", ref, sku, quantity, price])
        placed = dt.date(2026, 11, 1) + dt.timedelta(days=n % 28)
        orders.append([ref, rng.choice(CUSTOMERS), placed, round(total, 2)])
    for ws in wb.worksheets:
        for cell in ws[1]:
            cell.font = Font(bold=True)
    wb.save(path)


def main() -> None:
    DATA.mkdir(exist_ok=True)
    if sys.argv[1:] == ["shop"]:
        make_shop(DATA / "shop.xlsx", random.Random(SEED + 2))
        print(f"wrote {DATA / 'shop.xlsx'}")
        return
    make_products(DATA / "products.xlsx", random.Random(SEED))
    make_carts(DATA / "carts.csv", random.Random(SEED + 1))
    make_shop(DATA / "shop.xlsx", random.Random(SEED + 2))
    print(
        f"wrote {DATA / 'products.xlsx'} ({PRODUCT_ROWS} rows), "
        f"{DATA / 'carts.csv'} ({CART_ROWS} rows) and {DATA / 'shop.xlsx'}"
    )


if __name__ == "__main__":
    main()
