"""The checks of an event's ``metricAttributes`` object that JSON Schema cannot make cheaply:
nesting depth, key and string length, characters a CSV column name may not hold, letter-case
clashes between columns, and how many columns the object flattens to.

``AttributeChecks.keys`` also counts the keys the object holds at every level (the count
``strictjson`` needs to know that no key was repeated in the request's text), so that the
route's one walk over an event does both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.config import Limits
from chalicelib.ingest.column_names import case_clash, key_problem, needs_case_check
from chalicelib.ingest.strictjson import INEXACT_FLOAT, keys_and_exact

MAX_ATTRIBUTE_KEY = 256


class EventError(Exception):
    """One event is rejected; the message goes back to the client by index."""


class AttributeChecks:
    """``keys(attributes)``: check the object (``EventError`` says why it is refused) and
    return the number of keys it holds at every level, or -1 when a float in it may be an
    integer orjson could not hold (``strictjson.keys_and_exact``'s count)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.keys: Callable[[dict[str, Any]], int] = (
            self._flat_check() if limits.max_attribute_depth >= 1 else self._nested_keys
        )

    def _flat_check(self) -> Callable[[dict[str, Any]], int]:
        """``keys`` for the usual object, flat, as a closure over the limits (local names
        are the cheapest to read); a nested one goes to the walk below."""
        text_max = self.limits.max_string_length
        max_columns = self.limits.max_attribute_keys
        nested_keys, check_string = self._nested_keys, self._check_string

        def keys(attributes: dict[str, Any]) -> int:
            if not attributes:
                return 0
            # One join serves three checks: no key is longer than all of them together.
            # (A list first: join makes one of anything else, a dict's keys too.)
            joined = "".join([*attributes])
            if len(joined) > MAX_ATTRIBUTE_KEY and max(map(len, attributes)) > MAX_ATTRIBUTE_KEY:
                raise EventError(
                    f"metricAttributes has a key longer than {MAX_ATTRIBUTE_KEY} characters"
                )
            # isprintable() is False for every character a column name may not hold (and
            # for a few others, tab among them): the closer look runs only then.
            if not joined.isprintable() and (problem := key_problem(attributes)):
                raise EventError(problem)
            exact = True
            for item in attributes.values():
                kind = type(item)
                if kind is str:
                    if len(item) > text_max:
                        check_string(item)
                elif kind is float:
                    exact = exact and -INEXACT_FLOAT < item < INEXACT_FLOAT
                elif kind is dict or kind is list:
                    return nested_keys(attributes)
            # Keys that lower-casing leaves as they are cannot clash (lower() maps character
            # by character; its one rule of context, the final sigma, changes a capital).
            if (
                joined.lower() != joined
                and len({key.lower() for key in attributes}) != len(attributes)
                and (clash := case_clash(attributes))
            ):
                raise EventError(clash)
            if len(attributes) > max_columns:
                self._check_columns(len(attributes))
            return len(attributes) if exact else -1

        return keys

    def _nested_keys(self, attributes: dict[str, Any]) -> int:
        leaves = self._check_attributes(attributes, depth=1)
        if needs_case_check(attributes) and (clash := case_clash(attributes)):
            raise EventError(clash)
        self._check_columns(leaves)
        return keys_and_exact(attributes)

    def _check_columns(self, leaves: int) -> None:
        if leaves > self.limits.max_attribute_keys:
            raise EventError(
                f"metricAttributes has {leaves} keys once nested objects are flattened "
                f"(each becomes a CSV column); the limit is {self.limits.max_attribute_keys}"
            )

    def _check_attributes(self, value: dict[str, Any], depth: int) -> int:
        """Bound nesting depth, key and string length, refuse control characters in
        keys (they become CSV column names), and count the leaf keys: the columns the
        object flattens to."""
        limits = self.limits
        if depth > limits.max_attribute_depth:
            raise EventError(
                f"metricAttributes nest deeper than {limits.max_attribute_depth} levels"
            )
        if value:
            if max(map(len, value)) > MAX_ATTRIBUTE_KEY:
                raise EventError(
                    f"metricAttributes has a key longer than {MAX_ATTRIBUTE_KEY} characters"
                )
            if not "".join(value).isprintable() and (problem := key_problem(value)):
                raise EventError(problem)
        leaves = 0
        for item in value.values():
            kind = type(item)
            if kind is dict:
                leaves += self._check_attributes(item, depth + 1)
                continue
            leaves += 1
            if kind is str:
                if len(item) > limits.max_string_length:
                    self._check_string(item)
            elif kind is list:
                self._check_nested(item, depth + 1)
        return leaves

    def _check_nested(self, value: Any, depth: int) -> None:
        """Inside a list (one JSON cell): depth, key and string length only."""
        if depth > self.limits.max_attribute_depth:
            raise EventError(
                f"metricAttributes nest deeper than {self.limits.max_attribute_depth} levels"
            )
        if type(value) is dict:
            if value and max(map(len, value)) > MAX_ATTRIBUTE_KEY:
                raise EventError(
                    f"metricAttributes has a key longer than {MAX_ATTRIBUTE_KEY} characters"
                )
            items: Any = value.values()
        else:
            items = value
        for item in items:
            kind = type(item)
            if kind is str:
                self._check_string(item)
            elif kind is dict or kind is list:
                self._check_nested(item, depth + 1)

    def _check_string(self, text: str) -> None:
        if len(text) > self.limits.max_string_length:
            raise EventError(
                f"metricAttributes has a string longer than "
                f"{self.limits.max_string_length} characters"
            )
