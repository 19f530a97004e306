"""The header section of a SIP message: an ordered multi-map (RFC 3261 §7.3).

Owns the canonical names and compact forms of header fields (§7.3.3 and the
RFCs that added compact forms), which fields are comma-separated lists
(§7.3.1), and :class:`Headers`, the mutable container a message holds.

Each entry is ``(key, name, value)``: ``key`` is the lower-case long form used
for lookups, ``name`` what is written on the wire (the canonical spelling for
known fields, the original spelling for unknown ones), ``value`` the field
value with surrounding whitespace removed and folded lines joined.  Entries
are kept as they arrived, so unknown fields and multi-line lists survive a
parse/serialise round trip untouched.
"""

from __future__ import annotations

from collections.abc import Iterator

from telavox.sip.grammar import split_commas

__all__ = ["COMPACT_FORMS", "Headers", "canonical_name", "header_key", "is_list_header"]

_CANONICAL = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Accept-Resource-Priority",
    "Alert-Info", "Allow", "Allow-Events", "Authentication-Info", "Authorization", "Call-ID",
    "Call-Info", "Contact", "Content-Disposition", "Content-Encoding", "Content-Language",
    "Content-Length", "Content-Type", "CSeq", "Date", "Diversion", "Error-Info", "Event",
    "Expires", "Flow-Timer", "From", "History-Info", "Identity", "In-Reply-To", "Join",
    "Max-Forwards", "MIME-Version", "Min-Expires", "Min-SE", "Organization",
    "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Priority", "Privacy",
    "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck", "Reason",
    "Record-Route", "Refer-Sub", "Refer-To", "Referred-By", "Reject-Contact", "Remote-Party-ID",
    "Replaces", "Reply-To", "Request-Disposition", "Require", "Resource-Priority",
    "Retry-After", "Route", "RSeq", "Security-Client", "Security-Server", "Security-Verify",
    "Server", "Service-Route", "Session-Expires", "SIP-ETag", "SIP-If-Match", "Subject",
    "Subscription-State", "Supported", "Target-Dialog", "Timestamp", "To", "Unsupported",
    "User-Agent", "User-to-User", "Via", "Warning", "WWW-Authenticate",
]  # fmt: skip

COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",  # RFC 3841
    "b": "Referred-By",  # RFC 3892
    "c": "Content-Type",
    "d": "Request-Disposition",  # RFC 3841
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",  # RFC 3841
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",  # RFC 6665
    "r": "Refer-To",  # RFC 3515
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",  # RFC 6665
    "v": "Via",
    "x": "Session-Expires",  # RFC 4028
    "y": "Identity",  # RFC 8224
}

# Fields whose grammar is a comma-separated list (RFC 3261 §7.3.1 and others).
_LIST_KEYS = frozenset(
    name.lower()
    for name in (
        "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
        "Allow-Events", "Call-Info", "Contact", "Content-Encoding", "Content-Language",
        "Diversion", "Error-Info", "History-Info", "In-Reply-To", "P-Asserted-Identity",
        "P-Preferred-Identity", "Path", "Proxy-Require", "Reason", "Record-Route",
        "Reject-Contact", "Require", "Route", "Security-Client", "Security-Server",
        "Security-Verify", "Service-Route", "Supported", "Unsupported", "Via", "Warning",
    )
)  # fmt: skip

# lower-case name or compact form -> (key, canonical name)
_BY_LOWER: dict[str, tuple[str, str]] = {n.lower(): (n.lower(), n) for n in _CANONICAL}
for _short, _long in COMPACT_FORMS.items():
    _BY_LOWER[_short] = (_long.lower(), _long)
# exact spelling -> (key, name); grows with the spellings seen (bounded)
_BY_EXACT: dict[str, tuple[str, str]] = {n: (n.lower(), n) for n in _CANONICAL}
for _short, _long in COMPACT_FORMS.items():
    _BY_EXACT[_short] = (_long.lower(), _long)
_EXACT_LIMIT = 4096


def header_key(name: str) -> tuple[str, str]:
    """``(key, wire name)`` for a field name as written (compact forms expanded)."""
    hit = _BY_EXACT.get(name)  # (inlined in the lookups of Headers)
    if hit is not None:
        return hit
    lower = name.lower()
    hit = _BY_LOWER.get(lower)
    result = hit if hit is not None else (lower, name)
    if len(_BY_EXACT) < _EXACT_LIMIT:
        _BY_EXACT[name] = result
    return result


def canonical_name(name: str) -> str:
    """The canonical spelling of a known field name, else ``name`` itself."""
    return header_key(name)[1]


def is_list_header(name: str) -> bool:
    """True if the field's grammar is a comma-separated list."""
    return header_key(name)[0] in _LIST_KEYS


class Headers:
    """An ordered multi-map of header fields; lookups are case-insensitive
    and understand compact forms.

    Mutating methods change the container in place; :meth:`copy` is cheap
    (entries are immutable tuples).
    """

    __slots__ = ("_items", "views")

    def __init__(self, items: list[tuple[str, str, str]] | None = None) -> None:
        self._items: list[tuple[str, str, str]] = items if items is not None else []
        #: parsed views of fields (frozen values such as the top Via), keyed
        #: by the field's key; a change of a field drops its view, so a view
        #: is always that of the current value (see Message._cached)
        self.views: dict[str, object] = {}

    def _touch(self, key: str) -> None:
        if self.views:
            self.views.pop(key, None)

    @classmethod
    def of(cls, *pairs: tuple[str, str]) -> Headers:
        """Build from ``(name, value)`` pairs."""
        h = cls()
        for name, value in pairs:
            h.add(name, value)
        return h

    def copy(self) -> Headers:
        """A shallow copy (entries are shared immutable tuples)."""
        h = Headers(list(self._items))
        if self.views:
            h.views = dict(self.views)
        return h

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """``(wire name, value)`` of every entry, in order."""
        for _, name, value in self._items:
            yield name, value

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)[0]
        return any(item[0] == key for item in self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._items] == [(k, v) for k, _, v in other._items]

    def __repr__(self) -> str:
        return f"Headers({[(n, v) for _, n, v in self._items]!r})"

    def entries(self) -> list[tuple[str, str, str]]:
        """The raw ``(key, name, value)`` list (do not mutate)."""
        return self._items

    def building(self) -> list[tuple[str, str, str]]:
        """The raw list, for code that fills it in place (the parser,
        response builders); counts as a change of every field."""
        self.views.clear()
        return self._items

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first field called ``name``, else ``default``."""
        known = _BY_EXACT.get(name)
        key = known[0] if known is not None else header_key(name)[0]
        for k, _, v in self._items:
            if k == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every field value called ``name``, one per field line, in order."""
        known = _BY_EXACT.get(name)
        key = known[0] if known is not None else header_key(name)[0]
        return [v for k, _, v in self._items if k == key]

    def values(self, name: str) -> list[str]:
        """Every element of a list-valued field, split at top-level commas.

        For a field that is not a list, the same as :meth:`get_all`.  Raises
        :class:`telavox.sip.grammar.GrammarError` for unbalanced quotes or
        brackets.
        """
        key = header_key(name)[0]
        if key not in _LIST_KEYS:
            return [v for k, _, v in self._items if k == key]
        out: list[str] = []
        for k, _, v in self._items:
            if k == key:
                if "," in v:
                    out.extend(split_commas(v))
                elif v:
                    out.append(v)
        return out

    def first_value(self, name: str) -> str | None:
        """The first element of a (possibly list-valued) field, or None.

        For a list, the same as ``values(name)[0]``: lines without elements
        (empty, or only commas) are passed over.
        """
        known = _BY_EXACT.get(name)
        key = known[0] if known is not None else header_key(name)[0]
        for k, _, v in self._items:
            if k == key:
                if key in _LIST_KEYS:
                    if "," in v:
                        parts = split_commas(v)
                        if parts:
                            return parts[0]
                        continue
                    if not v:
                        continue
                return v
        return None

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        """Append a field (or put it before every other field of that name)."""
        key, wire = header_key(name)
        self._touch(key)
        entry = (key, wire, value)
        if not first:
            self._items.append(entry)
            return
        for i, (k, _, _) in enumerate(self._items):
            if k == key:
                self._items.insert(i, entry)
                return
        self._items.append(entry)

    def insert_at_top(self, name: str, value: str) -> None:
        """Put a field first of all fields (for Via, which leads a request)."""
        key, wire = header_key(name)
        self._touch(key)
        self._items.insert(0, (key, wire, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` by one, where the first stood."""
        key, wire = header_key(name)
        self._touch(key)
        items = self._items
        for i, (k, _, _) in enumerate(items):
            if k == key:
                items[i] = (key, wire, value)
                if any(it[0] == key for it in items[i + 1 :]):
                    self._items = items[: i + 1] + [it for it in items[i + 1 :] if it[0] != key]
                return
        items.append((key, wire, value))

    def remove(self, name: str) -> int:
        """Delete every field called ``name``; returns how many were removed."""
        key = header_key(name)[0]
        self._touch(key)
        before = len(self._items)
        self._items = [it for it in self._items if it[0] != key]
        return before - len(self._items)

    def pop_first_value(self, name: str) -> str | None:
        """Remove and return the first element of a list-valued field (the top
        Via, the first Route), keeping the others on their line."""
        key = header_key(name)[0]
        self._touch(key)
        items = self._items
        i = 0
        while i < len(items):
            k, wire, v = items[i]
            if k != key:
                i += 1
                continue
            if key not in _LIST_KEYS:
                del items[i]
                return v
            parts = _elements(v)
            if len(parts) > 1:
                items[i] = (k, wire, ", ".join(parts[1:]))
                return parts[0]
            del items[i]  # a line without elements before the first goes too
            if parts:
                return parts[0]
        return None

    def replace_first_value(self, name: str, value: str) -> bool:
        """Replace the first element of a list-valued field; False if absent."""
        key = header_key(name)[0]
        self._touch(key)
        for i, (k, wire, v) in enumerate(self._items):
            if k != key:
                continue
            if key in _LIST_KEYS:
                parts = _elements(v)
                if not parts:
                    continue
                if len(parts) > 1:
                    self._items[i] = (k, wire, ", ".join([value, *parts[1:]]))
                    return True
            self._items[i] = (k, wire, value)
            return True
        return False


def _elements(value: str) -> list[str]:
    """The elements of one line of a list-valued field."""
    if "," in value:
        return split_commas(value)
    return [value] if value else []
