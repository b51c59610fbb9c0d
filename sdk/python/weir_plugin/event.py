"""The event a plugin sees, and what it can say about it; for resolvers,
the conflict they see and what they can decide."""

IMAGES = ("key", "before", "after")

_REMOVE = object()


class Source:
    """Where a change came from."""

    __slots__ = (
        "connector",
        "database",
        "schema",
        "table",
        "position",
        "txid",
        "commit_time_us",
        "origin",
    )

    def __init__(
        self,
        connector="",
        database="",
        schema="",
        table="",
        position="",
        txid=None,
        commit_time_us=0,
        origin=None,
    ):
        self.connector = connector
        self.database = database
        self.schema = schema
        self.table = table
        self.position = position
        self.txid = txid
        self.commit_time_us = commit_time_us
        self.origin = origin

    def __repr__(self):
        return "Source(%s.%s.%s at %s)" % (
            self.database,
            self.schema,
            self.table,
            self.position,
        )


class Row:
    """One row image: column names and values, in table order.

    Read it like a mapping (``row["email"]``, ``row.get("email")``,
    ``"email" in row``, ``for name, value in row``). Rows are read-only:
    change an event's columns through :meth:`Event.set` and friends, which
    record patches that the host applies.
    """

    __slots__ = ("names", "values")

    def __init__(self, names, values):
        self.names = names
        self.values = values

    @classmethod
    def from_dict(cls, columns):
        """A row from a ``{name: value}`` dict (tests build events so)."""
        return cls(list(columns), list(columns.values()))

    def index(self, name):
        """The position of column ``name``, or None."""
        try:
            return self.names.index(name)
        except ValueError:
            return None

    def get(self, name, default=None):
        i = self.index(name)
        return default if i is None else self.values[i]

    def __getitem__(self, name):
        i = self.index(name)
        if i is None:
            raise KeyError(name)
        return self.values[i]

    def __contains__(self, name):
        return name in self.names

    def __iter__(self):
        return zip(self.names, self.values)

    def __len__(self):
        return len(self.names)

    def to_dict(self):
        return dict(zip(self.names, self.values))

    def __repr__(self):
        return "Row(%r)" % self.to_dict()


class Event:
    """One row change.

    ``op`` is ``"c"`` (create), ``"u"`` (update), ``"d"`` (delete), ``"t"``
    (truncate) or ``"r"`` (read by the snapshot); ``source`` a
    :class:`Source`; ``key`` a :class:`Row`; ``before`` and ``after`` rows
    or None. Changes made with :meth:`set`, :meth:`remove` and friends are
    recorded as patches: only the changed columns travel back to the host.
    """

    __slots__ = ("op", "source", "key", "before", "after", "patches")

    def __init__(self, op, source, key, before=None, after=None):
        self.op = op
        self.source = source
        self.key = key
        self.before = before
        self.after = after
        # (image, index, value or _REMOVE), in the order made.
        self.patches = []

    @classmethod
    def new(cls, op, source, key=None, before=None, after=None):
        """A new event (for :func:`Replace`) from dicts of column values;
        `source` a :class:`Source` (an input event's, say)."""
        if op not in ("c", "u", "d", "t", "r"):
            raise ValueError("no op %r: give c, u, d, t or r" % (op,))
        row = lambda d: None if d is None else Row.from_dict(d)  # noqa: E731
        return cls(op, source, Row.from_dict(key or {}), row(before), row(after))

    @property
    def table(self):
        return self.source.table

    def image(self, image):
        """The row ``"key"``, ``"before"`` or ``"after"``, as it arrived
        (patches not applied), or None."""
        if image == "after":
            return self.after
        if image == "before":
            return self.before
        if image == "key":
            return self.key
        raise ValueError("no image %r: give key, before or after" % (image,))

    def set(self, image, index, value):
        """Replaces the value at ``index`` of ``image``."""
        self.patches.append((image, index, value))

    def remove(self, image, index):
        """Removes the column at ``index`` of ``image``."""
        self.patches.append((image, index, _REMOVE))

    def set_column(self, image, name, value):
        """Replaces column ``name`` of ``image``; False if there is none."""
        row = self.image(image)
        i = None if row is None else row.index(name)
        if i is None:
            return False
        self.set(image, i, value)
        return True

    def set_after(self, name, value):
        """Replaces column ``name`` of the after image; False if there is none."""
        return self.set_column("after", name, value)

    def patched(self, image):
        """The row ``image`` with this event's patches applied, as a dict
        (None when the event has no such image)."""
        row = self.image(image)
        if row is None:
            return None
        values = list(row.values)
        for img, i, v in self.patches:
            if img == image:
                values[i] = v
        return {n: v for n, v in zip(row.names, values) if v is not _REMOVE}

    def __repr__(self):
        return "Event(%s %r key=%r)" % (self.op, self.source, self.key)


class Outcome:
    """What becomes of one event: return :data:`KEEP` (or None), :data:`DROP`,
    :func:`Replace` or :func:`Fail` from ``transform``."""

    __slots__ = ("kind", "reason", "events")

    def __init__(self, kind, reason=None, events=()):
        self.kind = kind
        self.reason = reason
        self.events = tuple(events)

    def __repr__(self):
        if self.kind == "fail":
            return "Fail(%r)" % self.reason
        if self.kind == "replace":
            return "Replace(%r)" % (list(self.events),)
        return self.kind.upper()

    def __eq__(self, other):
        return (
            isinstance(other, Outcome)
            and self.kind == other.kind
            and self.reason == other.reason
            and self.events == other.events
        )

    def __hash__(self):
        return hash((self.kind, self.reason))


KEEP = Outcome("keep")
"""Pass the event on, with the column changes made through the event."""

DROP = Outcome("drop")
"""Drop the event."""


def Replace(events):
    """Replace the event with these events (zero or more), built with
    :meth:`Event.new`; column changes made to the input event are
    ignored."""
    events = list(events)
    for e in events:
        if not isinstance(e, Event):
            raise TypeError("Replace takes events (Event.new), not %s" % type(e).__name__)
    return Outcome("replace", events=events)


def Fail(reason):
    """The event cannot be processed; it goes to the dead-letter queue with
    this reason. Raising an exception from ``transform`` does the same."""
    return Outcome("fail", str(reason))


class VersionMeta:
    """The version of the local row in a conflict: ``commit_time_us``
    (microseconds since the epoch, UTC), ``origin`` (the region that wrote
    it) and ``txid``; the last two None when unknown."""

    __slots__ = ("commit_time_us", "origin", "txid")

    def __init__(self, commit_time_us=0, origin=None, txid=None):
        self.commit_time_us = commit_time_us
        self.origin = origin
        self.txid = txid

    def __repr__(self):
        return "VersionMeta(%r, %r, %r)" % (self.commit_time_us, self.origin, self.txid)


class Conflict:
    """What a resolver settles: an incoming change meets a local row that
    changed since the change's before image.

    ``local`` is the row as it is now in the target (a :class:`Row`),
    ``local_meta`` its :class:`VersionMeta`, ``incoming`` the change (an
    :class:`Event`, whose ``source`` carries the incoming version:
    ``commit_time_us``, ``origin``, ``txid``).
    """

    __slots__ = ("local", "local_meta", "incoming")

    def __init__(self, local, local_meta, incoming):
        self.local = local
        self.local_meta = local_meta
        self.incoming = incoming

    def __repr__(self):
        return "Conflict(local=%r, local_meta=%r, incoming=%r)" % (
            self.local,
            self.local_meta,
            self.incoming,
        )


class Resolution:
    """A resolver's decision: return :data:`KEEP_LOCAL`,
    :data:`TAKE_INCOMING`, :func:`Merged` or :func:`Review` from
    ``resolve``."""

    __slots__ = ("kind", "row", "reason")

    def __init__(self, kind, row=None, reason=None):
        self.kind = kind
        self.row = row
        self.reason = reason

    def __repr__(self):
        if self.kind == "merged":
            return "Merged(%r)" % (self.row.to_dict(),)
        if self.kind == "review":
            return "Review(%r)" % self.reason
        return self.kind.upper().replace("-", "_")

    def __eq__(self, other):
        return (
            isinstance(other, Resolution)
            and self.kind == other.kind
            and self.reason == other.reason
            and (None if self.row is None else list(self.row))
            == (None if other.row is None else list(other.row))
        )

    def __hash__(self):
        return hash((self.kind, self.reason))


KEEP_LOCAL = Resolution("keep-local")
"""Keep the local row: nothing is written."""

TAKE_INCOMING = Resolution("take-incoming")
"""Apply the incoming change."""


def Merged(row):
    """Write this row instead: a :class:`Row` or a ``{name: value}`` dict,
    e.g. ``Merged({**conflict.local.to_dict(), "stock": 7})``."""
    if isinstance(row, Row):
        return Resolution("merged", row=row)
    if isinstance(row, dict):
        return Resolution("merged", row=Row.from_dict(row))
    raise TypeError("Merged takes a Row or a dict of column values, not %s" % type(row).__name__)


def Review(reason):
    """Write nothing and log the conflict for a person to look at, with
    this reason."""
    return Resolution("review", reason=str(reason))
