"""A secret that cannot leak by accident: its repr and str are masked, it refuses to be pickled or
formatted into JSON, and only `reveal()` gives the value (call it at the last moment, in an adapter)."""

from __future__ import annotations


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("a Secret holds text")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            import hmac

            return hmac.compare_digest(self._value.encode(), other._value.encode())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __reduce__(self):  # pragma: no cover - defensive
        raise TypeError("a Secret cannot be pickled")


def redact(text: str, *secrets: Secret | str | None) -> str:
    """Replace every occurrence of the given secrets in `text` (for messages that came from outside)."""
    for s in secrets:
        if s is None:
            continue
        v = s.reveal() if isinstance(s, Secret) else s
        if v:
            text = text.replace(v, "********")
    return text
