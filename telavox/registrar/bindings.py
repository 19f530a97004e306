"""The location table: REGISTER processing on bindings, sans-IO.

Owns :class:`LocationTable` (every address-of-record's bindings, their
expiry and the changes not yet written to the store), :class:`Binding`,
:class:`Rules`, :class:`RegisterResult` and :class:`Refusal`.  No Twisted, no
clock: every call that depends on time takes ``now``, in the same clock as
:attr:`telavox.records.BindingRecord.expires_at` (wall-clock epoch seconds).

Theory of operation
-------------------

An address-of-record (AOR) is keyed by its user part only (the platform has
one domain; the caller checks it): ``sip:1001@PBX.example`` and ``1001``
name the same AOR.  The user part is compared case-sensitively after
decoding ``%XX`` escapes; records carry the canonical ``sip:user@domain``
with the domain in lower case.

:meth:`LocationTable.register` carries out RFC 3261 §10.3 steps 6-8 for a
REGISTER already authenticated and authorised for the AOR (steps 1-5 belong
to the caller):

* step 6: ``Contact: *`` must stand alone and come with ``Expires: 0``
  (400 otherwise); each other Contact must be a SIP or SIPS URI with valid
  ``expires``/``q``/``reg-id`` parameters (400 "Invalid Contact").
* step 7: a contact's expiry is its ``expires`` parameter, else the Expires
  header, else the default; 0 removes, longer than the maximum is cut down,
  and a non-zero value shorter than the minimum (and than one hour) refuses
  the whole request with 423 and Min-Expires.  A contact is matched against
  the AOR's bindings with the URI comparison of §19.1.4.  With the same
  Call-ID, a CSeq that is not higher aborts the request with 500; a different
  Call-ID replaces the binding (the UA restarted).  ``Contact: *`` removes
  every binding under the same Call-ID/CSeq check.  Updates are computed on a
  working copy and committed only when every one of them succeeded, so a
  refused request changes nothing.
* RFC 5626 §4.2 and §6: a contact carrying both ``+sip.instance`` and
  ``reg-id`` is bound by (instance, reg-id), not by URI: it replaces the
  binding of the same pair even when the URI differs (a re-registration over
  a new flow), and takes over a plain binding of an equivalent URI.
* ``max_contacts``: a request that would leave the AOR with more bindings
  than allowed (counted after the request applies) is refused with 403.
* step 8: the result lists the current bindings, best ``q`` first (equal
  ``q`` in registration order), each with its remaining seconds.

Each binding keeps what the proxy needs to reach the phone: the source
address the REGISTER came from (the address RFC 3581 ``rport``/``received``
describe, which is what gets through a NAT), the flow it arrived on for
TCP/TLS (RFC 5626 §5.3 sends back over it), the Path (RFC 3327 §5.3, in
order, used as the route toward the contact), User-Agent, instance, reg-id,
Call-ID, CSeq, ``q`` and the absolute expiry.

Expiry uses a heap with lazy deletion: a refresh pushes a new entry and the
stale one is skipped when it surfaces.  Every change marks the store key
``(aor, contact)`` dirty; :meth:`LocationTable.take_changes` hands the
upserts and removals accumulated since the previous call to the writer.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable

import attrs

from telavox.records import BindingRecord
from telavox.sip.errors import StatusEnum
from telavox.sip.grammar import GrammarError, unquote
from telavox.sip.hdrtypes import HeaderError, NameAddr
from telavox.sip.message import Request
from telavox.sip.transaction.events import Source
from telavox.sip.uri import SipUri, UriError, escape, parse_uri, unescape

__all__ = [
    "Binding",
    "Change",
    "ChangeKind",
    "LocationTable",
    "Refusal",
    "RegisterResult",
    "Rules",
    "canonical_aor",
    "split_aor",
]

_MAX_EXPIRES = 2**32 - 1
_MAX_REG_ID = 2**31 - 1
_ONE_HOUR = 3600


class Refusal(StatusEnum):
    """Why a REGISTER is refused: the status code and reason phrase sent."""

    INVALID_CONTACT = (400, "Invalid Contact")
    STAR_WITH_OTHERS = (400, "Contact * with other contacts")
    STAR_NEEDS_ZERO = (400, "Contact * needs Expires: 0")
    INVALID_EXPIRES = (400, "Invalid Expires")
    INVALID_CSEQ = (400, "Invalid Call-ID or CSeq")
    TOO_MANY_CONTACTS = (403, "Too many contacts")
    INTERVAL_TOO_BRIEF = (423, "Interval Too Brief")
    OUT_OF_ORDER = (500, "Out-of-order CSeq")


class ChangeKind(enum.Enum):
    """What happened to a binding (the ``what`` of a registration event)."""

    REGISTERED = "registered"
    REFRESHED = "refreshed"
    REMOVED = "removed"
    EXPIRED = "expired"


@attrs.frozen
class Rules:
    """The ``[registrar]`` limits a REGISTER is held to, in seconds."""

    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    max_contacts: int = 10


def split_aor(aor: str) -> tuple[str, str | None]:
    """``(user part, lower-case domain or None)`` of ``sip:user@domain``,
    ``user@domain`` or a bare user part; ValueError when there is no user."""
    text = aor.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    if "@" not in text and ":" not in text:
        if not text:
            raise ValueError("empty address-of-record")
        return unescape(text), None
    if "@" in text and ":" not in text.partition("@")[0]:
        text = "sip:" + text
    try:
        uri = parse_uri(text)
    except UriError as e:
        raise ValueError(f"bad address-of-record: {e}") from None
    if not isinstance(uri, SipUri) or not uri.user:
        raise ValueError(f"not an address-of-record: {aor[:60]!r}")
    return unescape(uri.user), uri.host_bare


def canonical_aor(user: str, domain: str) -> str:
    """The AOR text records carry: ``sip:<escaped user>@<domain in lower case>``."""
    return f"sip:{escape(user)}@{domain.lower()}"


def _instance_id(raw: str) -> str:
    """An instance id for comparison: unquoted, without <>, lower case."""
    text = unquote(raw) if raw.startswith('"') else raw
    return text.strip().strip("<>").lower()


def _format_q(q: float) -> str:
    return f"{q:.3f}".rstrip("0").rstrip(".")


@attrs.frozen
class Binding:
    """One registered contact of an AOR.

    ``contact`` is the Contact element without its ``expires`` and ``q``
    parameters (its text is the store key); ``instance`` is the
    ``+sip.instance`` value as written; ``reg_id`` is 0 when absent;
    ``ident`` is the table's identity of the binding, kept across refreshes.
    """

    aor: str
    contact: NameAddr
    expires_at: float
    q: float = 1.0
    call_id: str = ""
    cseq: int = 0
    source: str = ""
    flow: str = ""
    user_agent: str = ""
    instance: str = ""
    reg_id: int = 0
    path: tuple[str, ...] = ()
    ident: int = 0
    contact_text: str = attrs.field(default="", eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.contact_text:  # the contact's text, written once
            object.__setattr__(self, "contact_text", str(self.contact))

    @property
    def key(self) -> tuple[str, str]:
        """The store key ``(aor, contact text)``."""
        return self.aor, self.contact_text

    @property
    def outbound(self) -> tuple[str, int] | None:
        """The RFC 5626 ``(instance id, reg-id)`` pair, or None."""
        if self.instance and self.reg_id:
            return _instance_id(self.instance), self.reg_id
        return None

    def remaining(self, now: float) -> int:
        """Whole seconds left before expiry (never negative)."""
        return max(0, int(self.expires_at - now + 0.5))

    def header_value(self, now: float) -> str:
        """The Contact element of a 200: the contact with ``q`` and ``expires``."""
        # the stored contact has no q or expires: both are appended
        q = f";q={_format_q(self.q)}" if self.q != 1.0 else ""
        return f"{self.contact_text}{q};expires={self.remaining(now)}"

    def to_record(self) -> BindingRecord:
        """The :class:`~telavox.records.BindingRecord` the store keeps."""
        return BindingRecord(
            aor=self.aor, contact=self.contact_text, expires_at=self.expires_at, q=self.q,
            call_id=self.call_id, cseq=self.cseq, source=self.source, connection=self.flow,
            user_agent=self.user_agent, instance=self.instance, reg_id=self.reg_id,
            path=self.path)

    @classmethod
    def from_record(cls, record: BindingRecord, aor: str, ident: int) -> Binding:
        """The binding of ``record`` under AOR text ``aor``; ValueError when its
        contact does not parse."""
        try:
            contact = NameAddr.parse(record.contact)
        except GrammarError as e:
            raise ValueError(f"bad stored contact {record.contact[:60]!r}: {e}") from None
        return cls(
            aor=aor, contact=contact.without_param("expires").without_param("q"),
            expires_at=record.expires_at, q=record.q, call_id=record.call_id,
            cseq=record.cseq, source=record.source, flow=record.connection,
            user_agent=record.user_agent, instance=record.instance, reg_id=record.reg_id,
            path=tuple(record.path), ident=ident)


@attrs.frozen
class Change:
    """A binding registered, refreshed, removed or expired."""

    kind: ChangeKind
    binding: Binding


@attrs.frozen
class RegisterResult:
    """The outcome of a REGISTER: the status and reason to send, the current
    bindings (for the 200's Contact list), the changes made, and for 423 the
    Min-Expires value."""

    status: int
    reason: str
    bindings: tuple[Binding, ...] = ()
    changes: tuple[Change, ...] = ()
    min_expires: int | None = None
    refusal: Refusal | None = None

    @property
    def ok(self) -> bool:
        """True for a 200."""
        return self.status == 200

    @classmethod
    def refused(cls, refusal: Refusal, min_expires: int | None = None) -> RegisterResult:
        """A refusal: nothing changed."""
        return cls(refusal.status, refusal.reason, min_expires=min_expires, refusal=refusal)


@attrs.frozen
class _Wanted:
    """One Contact of a REGISTER, checked: what the binding should become."""

    contact: NameAddr
    uri: SipUri
    expires: int
    q: float
    instance: str
    reg_id: int

    @property
    def outbound(self) -> tuple[str, int] | None:
        if self.instance and self.reg_id:
            return _instance_id(self.instance), self.reg_id
        return None


def _raw_param(contact: NameAddr, name: str) -> str | None:
    """A header parameter's value as written (quotes kept), "" for a flag."""
    lname = name.lower()
    for key, value in contact.params:
        if key.lower() == lname:
            return "" if value is None else value
    return None


def _parse_q(text: str | None) -> float | None:
    if text is None:
        return 1.0
    try:
        q = float(text)
    except ValueError:
        return None
    digits = text.replace(".", "", 1)
    if not (0.0 <= q <= 1.0) or not (digits.isascii() and digits.isdigit()):
        return None
    return q


def _requested(contact: NameAddr, header: int | None, rules: Rules) -> int | None:
    """The expiry a contact asks for (§10.3 step 7), None when malformed."""
    text = contact.param("expires")
    if text is None:
        return rules.default_expires if header is None else min(header, _MAX_EXPIRES)
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        return None
    return _MAX_EXPIRES if len(text) > 10 else min(int(text), _MAX_EXPIRES)


def _check_contact(element: str, header: int | None, rules: Rules) -> _Wanted | Refusal:
    try:
        contact = NameAddr.parse(element)
    except GrammarError:
        return Refusal.INVALID_CONTACT
    uri = contact.uri
    requested = _requested(contact, header, rules)
    q = _parse_q(contact.param("q"))
    if not isinstance(uri, SipUri) or requested is None or q is None:
        return Refusal.INVALID_CONTACT
    instance = _raw_param(contact, "+sip.instance") or ""
    reg_id = 0
    reg_text = contact.param("reg-id")
    if reg_text is not None:
        if not (reg_text.isascii() and reg_text.isdigit() and len(reg_text) <= 10):
            return Refusal.INVALID_CONTACT
        reg_id = int(reg_text)
        if not 1 <= reg_id <= _MAX_REG_ID:
            return Refusal.INVALID_CONTACT
    if requested == 0:
        expires = 0
    elif requested < rules.min_expires and requested < _ONE_HOUR:
        return Refusal.INTERVAL_TOO_BRIEF
    else:
        expires = min(requested, rules.max_expires)
    kept = tuple(p for p in contact.params if p[0].lower() not in ("expires", "q"))
    if len(kept) != len(contact.params):
        contact = attrs.evolve(contact, params=kept)
    return _Wanted(contact=contact, uri=uri,
                   expires=expires, q=q, instance=instance, reg_id=reg_id if instance else 0)


def _check_contacts(elements: list[str], header: int | None,
                    rules: Rules) -> list[_Wanted] | Refusal:
    """Every Contact checked; a 400 refusal wins over a 423."""
    wanted: list[_Wanted] = []
    too_brief = False
    for element in elements:
        checked = _check_contact(element, header, rules)
        if checked is Refusal.INTERVAL_TOO_BRIEF:
            too_brief = True
        elif isinstance(checked, Refusal):
            return checked
        else:
            wanted.append(checked)
    return Refusal.INTERVAL_TOO_BRIEF if too_brief else wanted


@attrs.frozen
class _Context:
    """What every binding a REGISTER creates or refreshes takes from it."""

    aor: str
    now: float
    call_id: str
    cseq: int
    source: str
    flow: str
    user_agent: str
    path: tuple[str, ...]

    def binding(self, want: _Wanted, ident: int) -> Binding:
        return Binding(
            aor=self.aor, contact=want.contact, expires_at=self.now + want.expires, q=want.q,
            call_id=self.call_id, cseq=self.cseq, source=self.source, flow=self.flow,
            user_agent=self.user_agent, instance=want.instance, reg_id=want.reg_id,
            path=self.path, ident=ident)


def _match(bindings: list[Binding], wanted: _Wanted) -> int | None:
    """Index of the binding ``wanted`` updates: same (instance, reg-id) for an
    RFC 5626 contact, else an equivalent URI (§19.1.4)."""
    pair = wanted.outbound
    if pair is not None:
        for i, binding in enumerate(bindings):
            if binding.outbound == pair:
                return i
    for i, binding in enumerate(bindings):
        if pair is not None and binding.outbound is not None:
            continue
        if wanted.uri.equivalent(binding.contact.uri):
            return i
    return None


class LocationTable:
    """Every AOR's bindings, their expiry, and the changes to write behind.

    ``domain`` names the platform in the AOR text of bindings and records.
    """

    def __init__(self, domain: str) -> None:
        self.domain = domain.lower()
        self._aors: dict[str, list[Binding]] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._live: dict[int, float] = {}  # ident -> expires_at of live bindings
        self._dirty: dict[tuple[str, str], BindingRecord | None] = {}
        self._next_ident = 1

    # -- reading --------------------------------------------------------------

    @property
    def aor_count(self) -> int:
        """Number of AORs with at least one binding."""
        return len(self._aors)

    @property
    def binding_count(self) -> int:
        """Number of bindings held (expired ones count until collected)."""
        return len(self._live)

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """The unexpired bindings of ``aor`` (any form :func:`split_aor`
        takes), best q first."""
        user, _ = split_aor(aor)
        return _ordered(b for b in self._aors.get(user, ()) if b.expires_at > now)

    def next_deadline(self) -> float | None:
        """When the next binding expires, or None when there is none."""
        heap = self._heap
        while heap and self._live.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    # -- REGISTER ---------------------------------------------------------------

    def register(self, request: Request, source: Source, aor: str, now: float,
                 rules: Rules) -> RegisterResult:
        """Apply an authenticated, authorised REGISTER for ``aor`` that came
        from ``source`` (RFC 3261 §10.3 steps 6-8; see the module docstring)."""
        user, _ = split_aor(aor)
        try:
            call_id = request.call_id
            cseq = request.cseq.seq
        except (KeyError, HeaderError):
            return RegisterResult.refused(Refusal.INVALID_CSEQ)
        try:
            header_expires = request.int_header("Expires")
        except HeaderError:
            return RegisterResult.refused(Refusal.INVALID_EXPIRES)
        try:
            elements = [e.strip() for e in request.headers.values("Contact")]
            path = tuple(e.strip() for e in request.headers.values("Path"))
        except GrammarError:
            return RegisterResult.refused(Refusal.INVALID_CONTACT)
        before = self._aors.get(user, [])
        current = [b for b in before if b.expires_at > now]
        changes = [Change(ChangeKind.EXPIRED, b) for b in before if b.expires_at <= now]
        if "*" in elements:
            if len(elements) > 1:
                return RegisterResult.refused(Refusal.STAR_WITH_OTHERS)
            if header_expires != 0:
                return RegisterResult.refused(Refusal.STAR_NEEDS_ZERO)
            if any(b.call_id == call_id and cseq <= b.cseq for b in current):
                return RegisterResult.refused(Refusal.OUT_OF_ORDER)
            changes += [Change(ChangeKind.REMOVED, b) for b in current]
            current = []
        else:
            wanted = _check_contacts(elements, header_expires, rules)
            if wanted is Refusal.INTERVAL_TOO_BRIEF:
                return RegisterResult.refused(wanted, min_expires=rules.min_expires)
            if isinstance(wanted, Refusal):
                return RegisterResult.refused(wanted)
            context = _Context(
                aor=canonical_aor(user, self.domain), now=now, call_id=call_id, cseq=cseq,
                source=str(source), flow=source.flow or "",
                user_agent=request.headers.get("User-Agent") or "", path=path)
            refusal = self._apply(current, wanted, context, changes)
            if refusal is not None:
                return RegisterResult.refused(refusal)
            if len(current) > rules.max_contacts and len(current) > len(before):
                return RegisterResult.refused(Refusal.TOO_MANY_CONTACTS)
        if changes:
            self._commit(user, before, current)
        return RegisterResult(200, "OK", tuple(_ordered(current)), tuple(changes))

    def _apply(self, current: list[Binding], wanted: list[_Wanted], context: _Context,
               changes: list[Change]) -> Refusal | None:
        """Update the working copy ``current`` with each contact (§10.3 step 7)."""
        touched: set[int] = set()
        for want in wanted:
            index = _match(current, want)
            if index is None:
                if want.expires:
                    new = context.binding(want, self._new_ident())
                    current.append(new)
                    touched.add(new.ident)
                    changes.append(Change(ChangeKind.REGISTERED, new))
                continue
            old = current[index]
            if old.ident not in touched and old.call_id == context.call_id and (
                    context.cseq <= old.cseq):
                return Refusal.OUT_OF_ORDER
            touched.add(old.ident)
            if not want.expires:
                del current[index]
                changes.append(Change(ChangeKind.REMOVED, old))
                continue
            new = context.binding(want, old.ident)
            current[index] = new
            if want.uri.equivalent(old.contact.uri):
                changes.append(Change(ChangeKind.REFRESHED, new))
            else:
                changes += [Change(ChangeKind.REMOVED, old), Change(ChangeKind.REGISTERED, new)]
        return None

    def _new_ident(self) -> int:
        ident = self._next_ident
        self._next_ident += 1
        return ident

    def _commit(self, user: str, before: list[Binding], after: list[Binding]) -> None:
        """Make ``after`` the bindings of ``user`` and mark the store keys dirty."""
        old = {b.ident: b for b in before}
        for binding in after:
            previous = old.pop(binding.ident, None)
            if previous == binding:
                continue
            if previous is not None and previous.key != binding.key:
                self._dirty[previous.key] = None
            self._dirty[binding.key] = binding.to_record()
            self._track(user, binding)
        for gone in old.values():
            self._dirty[gone.key] = None
            self._live.pop(gone.ident, None)
        if after:
            self._aors[user] = after
        else:
            self._aors.pop(user, None)

    def _track(self, user: str, binding: Binding) -> None:
        self._live[binding.ident] = binding.expires_at
        heapq.heappush(self._heap, (binding.expires_at, binding.ident, user))
        if len(self._heap) > 2 * len(self._live) + 64:
            self._heap = [(e, i, a) for e, i, a in self._heap if self._live.get(i) == e]
            heapq.heapify(self._heap)

    # -- expiry -------------------------------------------------------------------

    def expire(self, now: float) -> list[Binding]:
        """Remove every binding whose expiry is at or before ``now``; returns them."""
        due: set[str] = set()
        heap = self._heap
        while heap and heap[0][0] <= now:
            expires_at, ident, user = heapq.heappop(heap)
            if self._live.get(ident) == expires_at:
                due.add(user)
        expired: list[Binding] = []
        for user in sorted(due):
            before = self._aors.get(user, [])
            gone = [b for b in before if b.expires_at <= now]
            self._commit(user, before, [b for b in before if b.expires_at > now])
            expired += gone
        return expired

    # -- the store -------------------------------------------------------------------

    def restore(self, records: Iterable[BindingRecord], now: float) -> list[Binding]:
        """Add the stored bindings that have not expired and do not clash with
        one registered since; expired or unreadable records are marked for
        removal.  Returns the bindings added."""
        added: list[Binding] = []
        for record in records:
            stored = (record.aor, record.contact)
            try:
                user, _ = split_aor(record.aor)
                binding = Binding.from_record(record, canonical_aor(user, self.domain),
                                              self._new_ident())
            except ValueError:
                self._dirty.setdefault(stored, None)
                continue
            bindings = self._aors.get(user, [])
            if any(b.key == stored for b in bindings):
                continue  # registered again since: that row is the newer one
            if record.expires_at <= now or any(_clash(binding, b) for b in bindings):
                self._dirty.setdefault(stored, None)
                continue
            if binding.key != stored:
                self._dirty.setdefault(stored, None)
                self._dirty[binding.key] = binding.to_record()
            self._aors[user] = [*bindings, binding]
            self._track(user, binding)
            added.append(binding)
        return added

    def take_changes(self) -> tuple[list[BindingRecord], list[tuple[str, str]]]:
        """The upserts and ``(aor, contact)`` removals since the previous call."""
        dirty, self._dirty = self._dirty, {}
        upserts = [record for record in dirty.values() if record is not None]
        removals = [key for key, record in dirty.items() if record is None]
        return upserts, removals

    def return_changes(self, upserts: Iterable[BindingRecord],
                       removals: Iterable[tuple[str, str]]) -> None:
        """Put back changes whose write failed, unless a key changed again since."""
        for record in upserts:
            self._dirty.setdefault((record.aor, record.contact), record)
        for key in removals:
            self._dirty.setdefault(key, None)

    def set_domain(self, domain: str) -> None:
        """Rename every binding's AOR for a new platform domain (store keys too)."""
        domain = domain.lower()
        if domain == self.domain:
            return
        self.domain = domain
        for user, bindings in self._aors.items():
            renamed = [attrs.evolve(b, aor=canonical_aor(user, domain)) for b in bindings]
            for old, new in zip(bindings, renamed, strict=True):
                self._dirty[old.key] = None
                self._dirty[new.key] = new.to_record()
            self._aors[user] = renamed


def _clash(new: Binding, old: Binding) -> bool:
    """True when ``new`` would update ``old`` (same RFC 5626 pair or URI)."""
    if new.outbound is not None and new.outbound == old.outbound:
        return True
    return new.contact.uri.equivalent(old.contact.uri)


def _ordered(bindings: Iterable[Binding]) -> list[Binding]:
    """Best q first; equal q in registration order (the sort is stable)."""
    return sorted(bindings, key=lambda b: -b.q)
