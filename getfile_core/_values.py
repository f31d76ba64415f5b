"""Value classes by hand: what ``@dataclass`` gave the download path, without ``dataclasses``.

Importing ``dataclasses`` imports ``inspect`` (and with it ``ast``, ``dis``,
``tokenize``): 6 ms, and each class it builds costs ~0.5 ms more (it compiles
its methods with ``exec``). A 1 MiB ``getfile get`` is meant to take ~30 ms
as a whole process (docs/performance.md), so the classes created on that
path (the protocol's events, ``Target``, ``Options``, ``FetchResult`` ...)
are written out: ``__slots__``, a hand-written ``__init__`` with the fields
in order (positional or keyword, defaults as before), and from these bases
equality by value, a repr of every field and ``replace``.

``tests/unit/test_values.py`` pins the behaviour each dataclass had.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~1.7 ms)
if TYPE_CHECKING:
    from typing import Self

#: How a frozen class's ``__init__`` writes past its own ``__setattr__``.
init_field = object.__setattr__


class Value:
    """A mutable record: equal when its fields are, unhashable (as ``@dataclass`` made it).

    A subclass sets ``_fields`` (its ``__init__`` arguments, in order) and
    ``__slots__`` (those names and any private state).
    """

    __slots__ = ()
    #: The fields, in ``__init__``'s order: compared, shown and copied.
    _fields: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple([getattr(self, name) for name in self._fields])

    def replace(self, **changes: object) -> Self:
        """A copy with ``changes`` (``dataclasses.replace``; an unknown name is a TypeError)."""
        values = {name: getattr(self, name) for name in self._fields}
        values.update(changes)
        return type(self)(**values)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({fields})"


class FrozenValue(Value):
    """An immutable record (``@dataclass(frozen=True)``): hashable by its fields, picklable."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:
        return hash(self._values())

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), self._values()
