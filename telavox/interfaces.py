"""Every contract between components of the platform.

Components meet only through these interfaces: a component receives the
providers it needs through its constructor (see :mod:`telavox.assembly`) and
never imports another component's package.  Values that cross are frozen
records from :mod:`telavox.records` or values of the core packages.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface

# --- every component ----------------------------------------------------------


class IBaseApplication(Interface):
    """A component of the platform, hosted as a Twisted service.

    Providers are also ``twisted.application.service.IService``.
    """

    name = Attribute("The component's unique name (str), e.g. 'sipproxy' or 'sip1'.")

    def health():
        """Return a :class:`telavox.records.Health`, computed cheaply and
        synchronously."""

    def stats():
        """Return a flat mapping of counter/gauge name (str) to number,
        synchronously and cheaply (no I/O)."""

    def reconfigure(section):
        """Apply a new configuration section of this component live.

        ``section`` is the component's config record (the same type it was
        built with).  Returns a Deferred that fires with None once the new
        section is in force, or fails with
        :class:`telavox.records.ReconfigureError` (naming the keys that need a
        restart) leaving the old section in force.
        """


# --- platform-wide services -----------------------------------------------------


class ISubscription(Interface):
    """A subscriber's handle on the event bus."""

    delivered = Attribute("Number of events handed to the callback (int).")
    dropped = Attribute("Number of events dropped because the queue was full (int).")
    queued = Attribute("Number of events waiting for delivery (int).")

    def cancel():
        """Stop delivery; queued events are discarded.  Idempotent."""


class IEventBus(Interface):
    """In-process publish/subscribe of frozen :class:`telavox.records.Event`.

    Delivery is asynchronous (never inside ``publish``), in publish order per
    subscriber, so events of one call arrive in the order they were
    published.  Each subscriber has a bounded queue: when it is full, new
    events for that subscriber are dropped and counted, and the publisher is
    never blocked or slowed by a slow subscriber.
    """

    def publish(event):
        """Queue ``event`` for every matching subscriber; returns None at once."""

    def subscribe(callback, topics=None, max_queue=1000):
        """Call ``callback(event)`` for each published event whose ``topic``
        is in ``topics`` (every topic when None).  Returns an
        :class:`ISubscription`.  Exceptions raised by the callback are logged
        and do not stop delivery."""

    def stats():
        """Counters: published, delivered, dropped, subscribers (mapping)."""


class IStore(Interface):
    """The platform's persistent data.  Every method returns a Deferred.

    The embedded default keeps it in SQLite under the data directory; the
    interface is written so that a PostgreSQL provider can stand in.
    Methods never block the reactor.
    """

    def open():
        """Create or migrate the schema.  Fires with None."""

    def close():
        """Finish pending writes and release the database.  Fires with None."""

    # users
    def sync_users(users):
        """Make the stored users exactly ``users`` (a sequence of
        UserRecord), in one transaction.  Fires with None."""

    def get_user(extension):
        """Fires with the UserRecord of ``extension`` or None."""

    def list_users():
        """Fires with a list of every UserRecord, ordered by extension."""

    # location bindings
    def save_bindings(upserts, removals):
        """In one transaction, insert or replace each BindingRecord of
        ``upserts`` (keyed by aor + contact) and delete each ``(aor, contact)``
        of ``removals``.  Fires with None."""

    def load_bindings():
        """Fires with a list of every stored BindingRecord."""

    # call detail records
    def add_cdrs(cdrs):
        """Append CdrRecords in one transaction.  Fires with None."""

    def list_cdrs(since=None, limit=100):
        """Fires with up to ``limit`` CdrRecords whose end_time >= ``since``
        (every one when None), newest first."""

    # key/value data for scripts (AGI DATABASE families)
    def kv_get(family, key):
        """Fires with the str value or None."""

    def kv_put(family, key, value):
        """Set a str value.  Fires with None."""

    def kv_delete(family, key):
        """Fires with True when a value was deleted, False when none existed."""

    def kv_keys(family, prefix=""):
        """Fires with the sorted keys of ``family`` starting with ``prefix``."""

    # voicemail metadata
    def add_voicemail(record):
        """Store a VoicemailRecord (its id is ignored).  Fires with the new id."""

    def list_voicemail(box, folder=None):
        """Fires with the box's VoicemailRecords, oldest first, optionally of
        one folder."""

    def update_voicemail(message_id, folder=None, read=None):
        """Move and/or mark a message.  Fires with True if it existed."""

    def delete_voicemail(message_id):
        """Fires with the deleted VoicemailRecord, or None."""

    # configuration versions
    def add_config_version(text, source):
        """Store a configuration text unless it equals the newest version.
        Fires with the ConfigVersion now newest."""

    def get_config_version(version):
        """Fires with the ConfigVersion numbered ``version`` or None."""

    def list_config_versions(limit=20):
        """Fires with up to ``limit`` ConfigVersions, newest first."""


# --- users, location service, routing ------------------------------------------------


class IUserDirectory(Interface):
    """The users of the platform and their digest credentials (in memory)."""

    realm = Attribute("The digest realm (the platform domain), str.")

    def get_user(extension):
        """The :class:`~telavox.records.UserRecord` of ``extension`` or None;
        synchronous."""

    def ha1(username, algorithm):
        """The hex HA1 of ``username`` for ``algorithm`` ("MD5", "SHA-256",
        "SHA-512-256") or None when the user is unknown or has none for that
        algorithm; synchronous."""


class ILocationService(Interface):
    """The registrar: REGISTER processing and the location of users' phones."""

    def register(request, source, user):
        """Apply an authenticated REGISTER (RFC 3261 §10.3) for ``user`` (the
        extension it authenticated as) that arrived from ``source``
        (:class:`~telavox.sip.transaction.Source`).  Returns the
        :class:`~telavox.sip.message.Response` to send (200 listing every
        current binding, or 400/403/423/500 with a reason phrase).
        Synchronous; the store is written behind."""

    def lookup(aor):
        """The current :class:`~telavox.records.BindingRecord` list of ``aor``
        (``sip:user@domain`` or just the user part), best q first;
        synchronous."""


class ITlb(Interface):
    """Where things live: the SIP server of a user or target, the gateways
    of a number, and the pool's health.  All methods are synchronous."""

    def locate_user(aor):
        """The :class:`~telavox.records.PoolMember` that hosts the calls of
        ``aor`` (a user part or ``sip:user@domain``), or None when no member is
        available."""

    def locate_target(name):
        """The member hosting a dial-plan target (IVR, mailbox, room, ...)."""

    def locate_number(number):
        """The gateways (PoolMember list, in failover order) for an E.164
        number: the available gateways of the longest matching prefix, in
        configuration order, then those of shorter matching prefixes (so a
        catch-all ``""`` gateway backs up a specific carrier)."""

    def pool():
        """Every SIP server and gateway with its state (PoolMember list)."""

    def member_for_source(host, port):
        """The pool member or gateway whose SIP address is ``host:port``, or
        None (peers are recognised by address, never by a header).  ``port``
        None (a TCP/TLS peer, whose source port is ephemeral) matches the
        first member on ``host``."""

    def drain(name, drained=True):
        """Stop (or resume) sending new calls to ``name``; returns False for an
        unknown name."""


class MediaError(Exception):
    """A media request that cannot be met: ``reason`` says why in words and
    ``status`` is the SIP status a call should get for it (503 when the port
    range is exhausted, 488 for streams the mediaserver cannot carry, 404 for
    an unknown endpoint or file)."""

    def __init__(self, reason: str, status: int = 503) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class IMediaServer(Interface):
    """RTP endpoints of one SIP server: relay, playback, recording, DTMF.

    Every method returns a Deferred (failing with :class:`MediaError`) and
    takes and returns only ids, strings and records of
    :mod:`telavox.records`, never live objects, so that a mediaserver can run
    in another process behind the same interface.  Methods on an id that was
    released (or never allocated) fail with ``MediaError(status=404)``,
    except ``release``, which is idempotent.
    """

    name = Attribute("The SIP server this mediaserver belongs to (e.g. sip1).")

    def allocate(owner, kinds=("audio",)):
        """A new :class:`~telavox.records.MediaEndpoint` owned by ``owner``
        (a call id), with one stream per media kind in ``kinds`` (``audio``,
        ``video``, ...), each an even RTP port and RTCP on the next one from
        the configured range, on the advertised address.  Fails with
        ``MediaError(status=503)`` when the range is exhausted."""

    def set_remote(endpoint_id, streams):
        """Tell the endpoint what the far end offered or answered: a tuple of
        :class:`~telavox.records.RemoteStream`, index for index with the
        endpoint's streams (missing ones stay idle).  May be called again
        (re-INVITE, hold, codec change); the far address is still latched
        from the first packets that arrive (symmetric RTP)."""

    def connect(endpoint_a, endpoint_b):
        """Relay media between two endpoints, stream for stream, both ways,
        translating payload types (and transcoding G.711 µ-law ↔ A-law) where
        the two far ends negotiated differently.  An endpoint is connected to
        at most one other: connecting it again replaces the old peer, and
        the packets sent on keep one SSRC, sequence and timestamp line.
        Connecting an endpoint to itself echoes its far end's media back."""

    def disconnect(endpoint_id):
        """Stop relaying to and from ``endpoint_id`` (and its peer)."""

    def play(endpoint_id, source):
        """Send a :class:`~telavox.records.PlaySource` to the endpoint's far
        end in place of relayed media; fires with a playback id when playing
        starts (a ``play_done`` event follows).  A new play replaces one in
        progress."""

    def stop_play(endpoint_id):
        """Stop the playback of ``endpoint_id`` (no error when none)."""

    def record(endpoint_id, path, received_only=False):
        """Record what the endpoint's far end sends and what it is sent
        (the whole call when connected) to a WAV file at ``path``: stereo,
        left = received, right = sent, 8 kHz 16-bit; with ``received_only``
        mono, what the far end sends only (a message, a greeting).  Fires
        with a recording id; stopped by ``stop_record`` or ``release``."""

    def stop_record(recording_id):
        """Finish the recording and fire with the WAV file's path."""

    def release(endpoint_id):
        """Free the endpoint's ports (stopping its relay, playback and
        recording); fires with its :class:`~telavox.records.MediaEndpointStats`
        (empty for an unknown id)."""

    def subscribe(callback):
        """Call ``callback(event)`` with every
        :class:`~telavox.records.MediaEvent` of this mediaserver's endpoints;
        returns an :class:`ISubscription`."""

    def join_room(room, endpoint_id, muted=False):
        """Put the endpoint into conference ``room`` (created on first
        join): from then on its far end hears the mix of every other
        participant's audio (never its own), 20 ms at a time, in its own
        codec, and its audio goes into the others' mixes unless ``muted``.
        An endpoint is in at most one room; joining disconnects it from any
        peer.  Fires with the number of participants now in the room."""

    def leave_room(endpoint_id):
        """Take the endpoint out of its room (no error when in none); a room
        left empty is removed.  Fires with the number of participants left."""

    def mute(endpoint_id, muted):
        """Keep (or stop keeping) the endpoint's audio out of its room's mix."""

    def endpoint_ids():
        """The ids of the endpoints allocated now (a list; synchronous)."""


# --- scripts: what tproxy and the scriptserver exchange ---------------------------------


class ChannelHungUp(Exception):  # noqa: N818 - a state, named as AGI scripts know it
    """The call behind a channel is over: every pending and later channel
    operation fails with this (AGI answers such commands ``-1``)."""


class IChannel(Interface):
    """One call as a script drives it: the channel of Asterisk's AGI.

    tproxy implements it for a call routed to a script; the scriptserver
    drives it.  Every method returns a Deferred; once the caller has hung
    up they fail with :class:`ChannelHungUp`.  Digits are ``0-9*#A-D`` from
    RFC 4733 events, SIP INFO or in-band tones, whichever the caller sends;
    a digit that arrives while nothing waits for one is kept (in order)
    for the next operation that accepts digits.
    """

    name = Attribute("Asterisk-style channel name, e.g. ``SIP/1001-0000001a``.")
    unique_id = Attribute("A unique id of the call (``agi_uniqueid``).")
    caller_id = Attribute("The caller's number, or ``unknown`` (``agi_callerid``).")
    caller_name = Attribute("The caller's display name, or ``unknown``.")
    extension = Attribute("The number dialled (``agi_extension``).")
    context = Attribute("The dial-plan context (``agi_context``), e.g. ``default``.")
    language = Attribute("The language of prompts, e.g. ``en``.")
    variables = Attribute("The channel variables, a mutable str → str mapping.")
    hung_up = Attribute("A Deferred that fires (with None) when the caller hangs up.")

    def state():
        """The channel state as AGI's CHANNEL STATUS numbers it: 4 ringing
        (not answered yet), 6 up (answered), 0 down (hung up)."""

    def answer():
        """Answer the call (200 OK to the caller); fires when answered.
        Answering an answered channel does nothing."""

    def hangup():
        """End the call; fires when done (never fails)."""

    def play(paths, escape_digits=""):
        """Play the WAV files ``paths`` (absolute paths) one after the other;
        fires with the digit of ``escape_digits`` that interrupted them, or
        ``""`` when they all played.  Answers the channel first if needed."""

    def play_tone(tone):
        """Play a tone (a :class:`~telavox.records.PlaySource` tone: an
        indications string or a country tone name) until :meth:`stop_tone`
        or the next play; fires when it starts."""

    def stop_tone():
        """Stop a tone or music playing."""

    def wait_digit(timeout):
        """The next digit, or ``""`` after ``timeout`` seconds (``timeout`` <
        0: wait as long as the call lasts)."""

    def record(path, escape_digits="", timeout=-1.0, silence=0.0, beep=False):
        """Record what the caller says into the WAV file ``path`` (8 kHz
        16-bit mono) until a digit of ``escape_digits`` (fires with it), the
        ``timeout`` in seconds (< 0: none), ``silence`` seconds of silence
        (0: not checked) or the hang-up; fires with the digit or ``""``.
        ``beep`` plays a short tone first."""

    def send_digits(digits):
        """Send DTMF ``digits`` to the caller; fires when sent."""

    def echo(escape_digits="#"):
        """Send the caller's own media back to it (Asterisk's Echo) until a
        digit of ``escape_digits``; fires with that digit.  Answers first."""

    def conference(room, muted=False, leave_digits="#", mute_digits="*"):
        """Put the caller into conference ``room`` of this SIP server (each
        participant hears all the others, never itself); a digit of
        ``mute_digits`` toggles the caller's mute, one of ``leave_digits``
        leaves.  Fires with the digit that left the room (answers first)."""

    def dial(target, timeout):
        """Connect the caller to ``target`` (an extension or external
        number, as the dial plan routes it; several joined by ``&`` ring at
        once and the first to answer wins) for up to ``timeout`` seconds of
        ringing; fires with Asterisk's DIALSTATUS: ``ANSWER`` (after the
        bridged call ended), ``BUSY``, ``NOANSWER``, ``CHANUNAVAIL``,
        ``CONGESTION`` or ``CANCEL`` (the caller hung up)."""

    def set_caller_id(number, name=""):
        """Present ``number``/``name`` as the caller on calls this channel
        places from now on."""


class IScriptServer(Interface):
    """Runs scripts on channels: built-in applications, AGI programs and
    FastAGI servers."""

    def run(script, channel, args=()):
        """Run ``script`` on ``channel``: a built-in application's name
        (``echo``, ``ivr``...), an AGI program's absolute path (spawned, AGI
        over its stdin/stdout), or ``agi://host[:port][/name]`` (FastAGI).
        ``args`` become ``agi_arg_1``... Fires (never fails) when the script
        is done; the caller hangs up the channel if it is still up."""


class IMailboxes(Interface):
    """The users' voicemail boxes, as the SIP servers see them (for
    message-waiting indication)."""

    def counts(extension):
        """``(new, old)``: the numbers of unheard and heard messages in the
        box of ``extension`` ((0, 0) for a box without messages)."""

    def subscribe(callback):
        """Call ``callback(extension)`` whenever a box's counts change;
        returns an :class:`ISubscription`."""
