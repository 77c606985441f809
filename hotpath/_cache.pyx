"""Cython RecordCache: in-process cache of msgpack records over Redis string keys."""
from collections import OrderedDict

cimport cython
from cpython.dict cimport PyDict_GetItemWithError
from cpython.ref cimport PyObject
from posix.time cimport clock_gettime, timespec

import msgpack

from hotpath._backend import CONNECTION_ERRORS, RedisBackend
from hotpath.errors import BackendUnavailable
from tollgate import keyspace

__all__ = ["RecordCache", "BackendUnavailable"]


cdef extern from "<time.h>":
    # Not in Cython's posix.time: the vDSO clock that costs a few ns, ~4 ms resolution.
    int CLOCK_MONOTONIC_COARSE


cdef extern from "<poll.h>":
    struct pollfd:
        int fd
        short events
        short revents
    int c_poll "poll" (pollfd *fds, unsigned long nfds, int timeout) nogil
    short POLLIN


@cython.final
@cython.freelist(64)
cdef class _Entry:
    pass


@cython.final
@cython.binding(False)  # plain method descriptors: CPython 3.11 specializes calls to them
cdef class RecordCache:
    """Bounded in-process cache of msgpack records stored under Redis string keys."""

    def __init__(self, redis, Py_ssize_t size=100_000, double ttl=30.0, double negative_ttl=5.0, *,
                 double gen_check_interval=1.0, double retry_interval=1.0,
                 str channel=keyspace.INVALIDATE, str gen_key=keyspace.GENERATION, clock=None):
        if size < 1 or ttl <= 0 or negative_ttl < 0 or gen_check_interval < 0 or retry_interval < 0:
            raise ValueError("size >= 1, ttl > 0 and the other intervals >= 0 are required")
        self._backend = RedisBackend(redis, channel, gen_key)
        self._entries = OrderedDict()
        self._clock = clock
        self._fd = -1
        self._gen = None
        self._behind = 0
        self.watch = ()
        self.watched = []
        self.size, self.ttl, self.negative_ttl = size, ttl, negative_ttl
        self.gen_check_interval, self.retry_interval = gen_check_interval, retry_interval

    cdef inline double _now(self) except? -1.0:
        cdef timespec ts
        if self._clock is not None:
            return self._clock()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return ts.tv_sec + ts.tv_nsec * 1e-9

    @cython.always_allow_keywords(False)  # METH_O: no argument parsing on the hit path
    def get(self, key):
        """The record under `key`, None when Redis has no such key; BackendUnavailable if unknowable."""
        cdef PyObject *p = PyDict_GetItemWithError(self._entries, key)  # borrowed reference
        cdef _Entry e
        cdef timespec ts
        if p is not NULL:
            e = <_Entry>p
            if self._clock is None:
                clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
                if e.expires <= ts.tv_sec + ts.tv_nsec * 1e-9:
                    return self._load(key)
            elif e.expires <= self._now():
                return self._load(key)
            e.ref = True
            if e.negative:
                self.negative_hits += 1
            else:
                self.hits += 1
            return e.value
        return self._load(key)

    cdef object _load(self, object key):
        cdef double now = self._now()
        self.misses += 1
        if not self.connected and now >= self._retry_at:
            self._connect(now)
        if now < self._retry_at:  # Redis failed moments ago: do not wait on it per request
            return self._stale(key)
        try:
            raw = self._backend.fetch(key)
        except CONNECTION_ERRORS:
            self._fail(now)
            return self._stale(key)
        if raw is None:
            if self.negative_ttl > 0:
                self._store(key, None, True, now + self.negative_ttl)
            return None
        value = msgpack.unpackb(raw, raw=False)
        self._store(key, value, False, now + self.ttl)
        return value

    cdef object _stale(self, object key):
        # Only a real record vouches for a caller; an expired "absent" answer does not.
        cdef _Entry e = self._entries.get(key)
        if e is not None and not e.negative:
            self.stale_served += 1
            return e.value
        raise BackendUnavailable(f"Redis unreachable and {key!r} not cached")

    cdef void _store(self, object key, object value, bint negative, double expires) except *:
        cdef _Entry e = self._entries.get(key)
        if e is None:
            if len(self._entries) >= self.size:
                self._evict()
            e = _Entry.__new__(_Entry)
            self._entries[key] = e
        else:  # refresh in place: keeps its queue position, counts as used
            e.ref = True
        e.value, e.expires, e.negative = value, expires, negative

    cdef void _evict(self) except *:
        # CLOCK / second chance: the oldest entry goes unless it was hit since it last came up.
        cdef _Entry e
        while True:
            key, e = self._entries.popitem(last=False)
            if not e.ref:
                self.evictions += 1
                return
            e.ref = False
            self._entries[key] = e

    cdef void _fail(self, double now) except *:
        self.errors += 1
        self._retry_at = now + self.retry_interval
        self.connected = False
        self._fd = -1
        self._backend.drop_subscription()

    cdef bint _connect(self, double now) except -1:
        try:
            self._backend.connect()
            gen = self._backend.generation()
        except CONNECTION_ERRORS:
            self._fail(now)
            return False
        # Invalidations published while unsubscribed are lost; a moved generation says so.
        if gen != self._gen and (self._entries or self._gen is not None):
            self.invalidate_all()
        self._gen, self._behind = gen, 0
        self._next_gen_check = now + self.gen_check_interval
        self._fd = self._backend.fileno()
        self.connected = True
        return True

    def connect(self):
        """Open the Redis connection and subscribe (Kamailio child_init); False if Redis is down."""
        return self._connect(self._now())

    cdef bint _pending(self) noexcept:
        cdef pollfd pfd
        if self._fd < 0:
            return True
        pfd.fd, pfd.events, pfd.revents = self._fd, POLLIN, 0
        return c_poll(&pfd, 1, 0) != 0

    cpdef int poll(self) except -1:
        """Apply pending invalidations without blocking; returns how many messages were applied."""
        cdef double now = self._now()
        cdef list keys = []
        if not self.connected:
            if now < self._retry_at or not self._connect(now):
                return 0
        try:
            if self._pending():
                keys = self._backend.drain()
            for key in keys:
                self._apply(key)
            if now >= self._next_gen_check:
                self._next_gen_check = now + self.gen_check_interval
                self._check_generation(self._backend.generation())
        except CONNECTION_ERRORS:
            self._fail(now)
            return 0
        return len(keys)

    cdef void _apply(self, object key) except *:
        """One invalidation message: `*` drops everything, `#<n>` says generation n was
        published in full, anything else is a key."""
        cdef bytes raw = key if isinstance(key, bytes) else key.encode()
        if raw == b"*":
            self.invalidate_all()
        elif raw[:1] == b"#":
            self._gen = max(self._gen or 0, int(raw[1:] or 0))
        else:
            self.invalidate(raw)
            if self.watch and raw.startswith(self.watch):
                self.watched.append(raw)

    cdef void _check_generation(self, object gen) except *:
        """Per-key messages move our generation with every write; Redis's counter only
        says messages were lost when it stays ahead of them for a whole check interval
        (a message can still be in flight at the first look), or when it went back
        (Redis lost its data)."""
        mine = self._gen or 0
        if gen < mine or (self._behind and mine < self._behind):
            self._gen, self._behind = gen, 0
            self.invalidate_all()
        else:
            self._behind = gen if gen > mine else 0

    cpdef bint invalidate(self, object key) except -1:
        """Drop `key` (bytes and str spellings both); True if something was cached."""
        other = key.decode("utf-8", "replace") if isinstance(key, bytes) else key.encode()
        cdef bint found = self._entries.pop(key, None) is not None
        found = self._entries.pop(other, None) is not None or found
        self.invalidations += found
        return found

    cpdef void invalidate_all(self) except *:
        """Drop every entry."""
        self._entries.clear()
        self.flushes += 1

    def stats(self):
        """Counters and the current size, for metrics."""
        return {"hits": self.hits, "misses": self.misses, "negative_hits": self.negative_hits,
                "stale_served": self.stale_served, "evictions": self.evictions, "errors": self.errors,
                "invalidations": self.invalidations, "flushes": self.flushes, "size": len(self._entries)}

    def __len__(self):
        return len(self._entries)
