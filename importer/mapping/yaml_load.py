"""YAML as mappings and plans are read: two equal keys are a mistake, `10:50` stays text, and
a file's aliases and nesting are bounded, so a hostile file is a short error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

__all__ = ["MAX_YAML_CHARACTERS", "MAX_YAML_DEPTH", "MAX_YAML_VALUES", "_UniqueKeyLoader", "quoted"]


_WITHOUT_BASE_60 = {
    "tag:yaml.org,2002:int": re.compile(
        r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"""
    ),
    "tag:yaml.org,2002:float": re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"""
        r"""|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"""
    ),
}
"""YAML 1.1's int and float patterns without their base-60 forms (`1:20` is 80)."""


MAX_YAML_VALUES = 100_000
"""Values a mapping or plan file may stand for once its aliases (`*name`) are expanded: a
mapping of a thousand columns is ~10,000; an alias bomb (aliases of aliases of lists) is
billions, which would be expanded into memory, and into the error message that quotes it."""
MAX_YAML_CHARACTERS = 10_000_000
"""Characters a file's words may stand for once its aliases are expanded: as many as the
largest file read holds written out. One long word named fifty times (`[*s, *s, ...]`) is
short on disk and would be billions of characters in the message that quotes it."""
MAX_YAML_DEPTH = 50
"""Levels values may be nested (a mapping needs four or five): deeper is a damaged or
hostile file, which Python's recursion could not read to its end."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML keeps the last of two equal keys without a word: here, that is a mistake. And
    YAML 1.1 reads `10:50` as the number 650 (base 60): here it stays the text written, so
    a range (`expect_rows: 10:50`) or a time is what it says. Aliases and nesting are
    bounded (MAX_YAML_VALUES, MAX_YAML_DEPTH): a file beyond them is refused at once, in a
    short message."""

    yaml_implicit_resolvers = {  # noqa: RUF012 (PyYAML's own class attribute)
        first: [(tag, _WITHOUT_BASE_60.get(tag, regexp)) for tag, regexp in resolvers]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """A node of the document, refused when nested deeper than MAX_YAML_DEPTH."""
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"values are nested more than {MAX_YAML_DEPTH} levels deep (a mapping "
                    "needs four or five)",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: yaml.Node) -> Any:
        """The document's values, once its aliases are known to expand to few enough."""
        _count_values(node, {}, set())
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"a key (line {line}) is a list or a mapping; a key is a word: quote it",
                    key_node.start_mark,
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"{quoted(key)} is given twice (lines {seen[key]} and {line}); YAML would keep "
                    "only the second: remove or rename one",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


def _count_values(
    node: yaml.Node, counted: dict[int, tuple[int, int]], open_: set[int]
) -> tuple[int, int]:
    """How many values, and characters in its words, `node` stands for with its aliases
    expanded (each alias counted as often as it is used); ConstructorError past
    MAX_YAML_VALUES or MAX_YAML_CHARACTERS, or for an alias inside the value it names."""
    known = counted.get(id(node))
    if known is not None:
        return known
    if id(node) in open_:
        raise yaml.constructor.ConstructorError(
            None, None, "an alias (*name) stands for a value that holds it", node.start_mark
        )
    open_.add(id(node))
    values, characters = 1, len(node.value) if isinstance(node, yaml.ScalarNode) else 0
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    for child in children:
        child_values, child_characters = _count_values(child, counted, open_)
        values, characters = values + child_values, characters + child_characters
    _refuse_beyond_limits(values, characters, node)
    open_.discard(id(node))
    counted[id(node)] = (values, characters)
    return values, characters


def _refuse_beyond_limits(values: int, characters: int, node: yaml.Node) -> None:
    """ConstructorError once a value stands for more values or characters than a file may."""
    if values > MAX_YAML_VALUES:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"it holds more than {MAX_YAML_VALUES:,} values once its aliases (*name) are "
            "expanded (a mapping needs a few hundred): write the values out instead of "
            "aliases of aliases",
            node.start_mark,
        )
    if characters > MAX_YAML_CHARACTERS:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"it holds more than {MAX_YAML_CHARACTERS:,} characters once its aliases (*name) "
            "are expanded (a mapping needs a few thousand): write the values out instead of "
            "aliases of long values",
            node.start_mark,
        )


QUOTE_LIMIT = 200
"""Characters of a value a message quotes: the start is enough to find it in the file."""


def quoted(value: Any) -> str:
    """`value` as a message quotes it (its repr), cut to QUOTE_LIMIT characters with "…";
    a long value is never written out whole, even for a moment."""
    if isinstance(value, str):
        text = repr(value[: QUOTE_LIMIT + 1])
    elif isinstance(value, dict):
        text = "{" + _first_items(f"{quoted(k)}: {quoted(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + _first_items(quoted(item) for item in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT] + "…"


def _first_items(parts: Iterator[str]) -> str:
    """Items quoted one by one, joined with commas, until QUOTE_LIMIT characters are had."""
    taken: list[str] = []
    for part in parts:
        if sum(map(len, taken)) > QUOTE_LIMIT:
            taken.append("…")
            break
        taken.append(part)
    return ", ".join(taken)
