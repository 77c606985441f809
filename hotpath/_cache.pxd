# Record cache: the hit path is a dict lookup plus a compare against a coarse C clock.

cdef class _Entry:
    cdef object value
    cdef double expires
    cdef bint negative
    cdef bint ref


cdef class RecordCache:
    cdef object _backend
    cdef object _entries          # OrderedDict: plain-dict lookups, O(1) oldest-first eviction
    cdef object _clock            # None: CLOCK_MONOTONIC_COARSE; a callable only in tests
    cdef int _fd                  # pub/sub socket polled with poll(2), -1 when unknown
    cdef object _gen
    cdef object _behind           # a generation Redis showed ahead of the messages, or 0
    cdef public tuple watch       # keys starting with one of these are also kept...
    cdef public list watched      # ... here, until the owner takes them
    cdef double _next_gen_check
    cdef double _retry_at
    cdef readonly Py_ssize_t size
    cdef readonly double ttl, negative_ttl, gen_check_interval, retry_interval
    cdef readonly bint connected
    cdef readonly unsigned long long hits, misses, negative_hits, stale_served
    cdef readonly unsigned long long evictions, errors, invalidations, flushes

    cdef double _now(self) except? -1.0
    cdef object _load(self, object key)
    cdef object _stale(self, object key)
    cdef void _store(self, object key, object value, bint negative, double expires) except *
    cdef void _evict(self) except *
    cdef void _fail(self, double now) except *
    cdef bint _connect(self, double now) except -1
    cdef bint _pending(self) noexcept
    cpdef int poll(self) except -1
    cdef void _apply(self, object key) except *
    cdef void _check_generation(self, object gen) except *
    cpdef bint invalidate(self, object key) except -1
    cpdef void invalidate_all(self) except *
