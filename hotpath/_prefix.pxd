# Longest-prefix match: one open-addressing table of every prefix, keyed by (length, digits),
# plus a direct index on the first K digits giving the best short match and which longer
# lengths exist below it, so a lookup usually costs zero or one hash probe.
from libc.stdint cimport uint32_t, uint64_t

cdef struct Slot:
    uint64_t rest      # digits after the first K, as an integer (0 for short prefixes)
    uint32_t tag       # (first-K-digits or whole short prefix) << 5 | length
    uint32_t vidx      # index into values; EMPTY marks a free slot


cdef struct Block:
    uint32_t best      # vidx << 3 | length of the best prefix no longer than K, or EMPTY
    uint32_t mask      # bit L set when a prefix of length L > K starts with this block


cdef class PrefixTable:
    cdef Slot *_slots
    cdef uint64_t _cap            # power of two
    cdef Py_ssize_t _count
    cdef int _k                   # digits in the direct index (1..6, grows with the table)
    cdef Block *_blocks           # one per K-digit block: both fields share a cache line
    cdef list _values
    cdef list _pending            # (prefix, value) added since the last build
    cdef bint _built

    cdef void _insert(self, str prefix, object value) except *
    cdef void _fill_best(self) except *
    cdef list _items(self)
    cdef Slot *_find(self, uint32_t tag, uint64_t rest) noexcept nogil
    cdef int _match(self, str number, uint32_t *vidx) except -2
