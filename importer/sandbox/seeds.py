"""The records the demo portal already holds, so association columns have targets."""

from __future__ import annotations

__all__ = ["SEED_CONTACTS", "SEED_DEALS"]

SEED_CONTACTS = tuple(
    (
        str(1001 + i),
        {
            "firstname": first,
            "lastname": last,
            "email": f"{first.lower()}.{last.lower()}@example.com",
        },
    )
    for i, (first, last) in enumerate(
        [
            ("Ada", "Lovelace"),
            ("Alan", "Turing"),
            ("Grace", "Hopper"),
            ("Linus", "Torvalds"),
            ("Margaret", "Hamilton"),
            ("Dennis", "Ritchie"),
            ("Barbara", "Liskov"),
            ("Ken", "Thompson"),
            ("Frances", "Allen"),
            ("Edsger", "Dijkstra"),
            ("Radia", "Perlman"),
            ("Donald", "Knuth"),
            ("Hedy", "Lamarr"),
            ("Tim", "Berners-Lee"),
            ("Katherine", "Johnson"),
            ("John", "McCarthy"),
            ("Joan", "Clarke"),
            ("Niklaus", "Wirth"),
            ("Sophie", "Wilson"),
            ("Guido", "van Rossum"),
        ]
    )
)
SEED_DEALS = tuple((str(2001 + i), {"dealname": f"Wholesale order {i + 1}"}) for i in range(5))
