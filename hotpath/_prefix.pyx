"""Cython PrefixTable: longest-prefix match over digit strings, ~40 MB for 1M prefixes."""
cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memset

from hotpath._prefix_py import MAX_DIGITS, check_prefix

__all__ = ["PrefixTable", "MAX_DIGITS"]

cdef uint32_t EMPTY = 0xFFFFFFFFu  # vidx of a free slot / "no short match" in best
cdef enum:
    MAXD = 20                          # MAX_DIGITS as a C constant


cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


cdef inline Py_ssize_t _pow10(int k) noexcept nogil:
    cdef Py_ssize_t r = 1
    for _ in range(k):
        r *= 10
    return r


cdef inline uint64_t _hash(uint32_t tag, uint64_t rest) noexcept nogil:
    cdef uint64_t h = (rest ^ (<uint64_t>tag * 0x9E3779B97F4A7C15ULL)) * 0xFF51AFD7ED558CCDULL
    return h ^ (h >> 32)


@cython.binding(False)  # plain method descriptors: CPython 3.11 specializes calls to them
cdef class PrefixTable:
    """Longest-prefix match of digit strings; values should not be None (None means no match)."""

    def __init__(self, items=None):
        self._values = []
        self._pending = []
        for prefix, value in items or ():
            self.add(prefix, value)

    def __dealloc__(self):
        PyMem_Free(self._slots)
        PyMem_Free(self._blocks)

    def add(self, prefix, value):
        """Map `prefix` ("" = default route) to `value`; a repeated prefix keeps the last value."""
        check_prefix(prefix)
        if value is None:
            raise ValueError("a prefix value must not be None (None means no match)")
        self._pending.append((prefix, value))
        self._built = False

    cdef Slot *_find(self, uint32_t tag, uint64_t rest) noexcept nogil:
        # Linear probing at load <= 0.5: the slot holding the key, or the free slot ending its run.
        cdef uint64_t i = _hash(tag, rest) & (self._cap - 1)
        while self._slots[i].vidx != EMPTY and (self._slots[i].tag != tag or self._slots[i].rest != rest):
            i = (i + 1) & (self._cap - 1)
        return &self._slots[i]

    def build(self):
        """Finish adding (lookups call it when needed); later adds trigger one more build."""
        if self._built:
            return self
        pairs = self._items() if self._slots != NULL else []
        pairs.extend(self._pending)
        cdef Py_ssize_t n = len(pairs)
        if n >= 1 << 29:  # best[] packs the value index with a 3-bit length
            raise OverflowError("a PrefixTable holds at most 2**29 prefixes")
        cdef int k = max(1, min(6, len(str(n)) - 1))
        cdef uint64_t cap = 16
        while cap < 2 * <uint64_t>n:
            cap *= 2
        cdef Slot *slots = <Slot *>PyMem_Malloc(cap * sizeof(Slot))
        cdef Block *blocks = <Block *>PyMem_Malloc(_pow10(k) * sizeof(Block))
        if slots == NULL or blocks == NULL:
            PyMem_Free(slots)
            PyMem_Free(blocks)
            raise MemoryError()
        PyMem_Free(self._slots)
        PyMem_Free(self._blocks)
        self._slots, self._blocks, self._cap, self._k = slots, blocks, cap, k
        memset(slots, 0xFF, cap * sizeof(Slot))
        memset(blocks, 0, _pow10(k) * sizeof(Block))
        self._values, self._pending, self._count = [], [], 0
        for prefix, value in pairs:
            self._insert(prefix, value)
        self._fill_best()
        self._built = True
        return self

    cdef void _insert(self, str prefix, object value) except *:
        cdef int length = len(prefix), k = self._k
        cdef uint32_t head = int(prefix[:k]) if length else 0
        cdef uint64_t rest = int(prefix[k:]) if length > k else 0
        cdef Slot *s = self._find(head << 5 | length, rest)
        if s.vidx == EMPTY:
            s.tag, s.rest, s.vidx = head << 5 | length, rest, len(self._values)
            self._values.append(value)
            self._count += 1
        else:  # a repeated prefix: the last add wins (the earlier value object is dropped)
            self._values[s.vidx] = value
        if length > k:
            self._blocks[head].mask |= 1u << length

    cdef void _fill_best(self) except *:
        # best for lengths 0..K built one digit at a time: own exact entry, else the parent's.
        cdef uint32_t *cur = <uint32_t *>PyMem_Malloc(sizeof(uint32_t))
        cdef uint32_t *nxt = NULL
        cdef uint32_t x, found
        cdef int length
        cdef Slot *s
        if cur == NULL:
            raise MemoryError()
        s = self._find(0, 0)
        cur[0] = EMPTY if s.vidx == EMPTY else s.vidx << 3
        for length in range(1, self._k + 1):
            if length < self._k:
                nxt = <uint32_t *>PyMem_Malloc(_pow10(length) * sizeof(uint32_t))
                if nxt == NULL:
                    PyMem_Free(cur)
                    raise MemoryError()
            for x in range(_pow10(length)):
                s = self._find(x << 5 | length, 0)
                found = cur[x // 10] if s.vidx == EMPTY else s.vidx << 3 | length
                if length < self._k:
                    nxt[x] = found
                else:
                    self._blocks[x].best = found
            PyMem_Free(cur)
            cur = nxt if length < self._k else NULL

    cdef int _match(self, str number, uint32_t *vidx) except -2:
        # Length of the longest matching prefix (value index in *vidx), -1 for none or a non-digit.
        cdef uint64_t head = 0, rest = 0
        cdef uint64_t rests[21]
        cdef uint64_t heads[7]
        cdef Py_ssize_t n = 0
        cdef int k, length
        cdef uint32_t m
        cdef Slot *s
        cdef Py_UCS4 c
        cdef uint32_t d
        if not self._built:
            self.build()
        k = self._k
        heads[0] = 0
        for c in number:
            d = <uint32_t>c - 48  # wraps around for anything below '0'
            if d > 9:
                return -1
            n += 1
            if n <= k:
                head = head * 10 + d
                heads[n] = head
            elif n <= MAXD:
                rest = rest * 10 + d
                rests[n] = rest
        if n >= k:
            m = self._blocks[head].mask & ((2u << min(n, MAXD)) - 1)
            while m:
                length = 63 - __builtin_clzll(m)
                s = self._find(<uint32_t>head << 5 | length, rests[length])
                if s.vidx != EMPTY:
                    vidx[0] = s.vidx
                    return length
                m &= ~(1u << length)
            if self._blocks[head].best == EMPTY:
                return -1
            vidx[0] = self._blocks[head].best >> 3
            return self._blocks[head].best & 7
        for length in range(n, -1, -1):  # shorter than the direct index: probe each length
            s = self._find(<uint32_t>heads[length] << 5 | length, 0)
            if s.vidx != EMPTY:
                vidx[0] = s.vidx
                return length
        return -1

    def lookup(self, str number not None):
        """The value of the longest prefix of `number`, None if none matches or it has a non-digit."""
        cdef uint32_t vidx
        if self._match(number, &vidx) < 0:
            return None
        return self._values[vidx]

    def lookup_prefix(self, str number not None):
        """(prefix, value) of the longest prefix of `number`, or None like lookup()."""
        cdef uint32_t vidx
        cdef int length = self._match(number, &vidx)
        if length < 0:
            return None
        return number[:length], self._values[vidx]

    def items(self):
        """Every (prefix, value), sorted by prefix."""
        self.build()
        return self._items()

    cdef list _items(self):
        cdef uint64_t i
        cdef int length
        cdef list out = []
        for i in range(self._cap):
            if self._slots[i].vidx == EMPTY:
                continue
            length = self._slots[i].tag & 31
            head = str(self._slots[i].tag >> 5).zfill(min(length, self._k)) if length else ""
            tail = str(self._slots[i].rest).zfill(length - self._k) if length > self._k else ""
            out.append((head + tail, self._values[self._slots[i].vidx]))
        out.sort()
        return out

    @property
    def nbytes(self):
        """Memory held by the table's arrays and value list (not the value objects)."""
        self.build()
        return self._cap * sizeof(Slot) + _pow10(self._k) * sizeof(Block) + len(self._values) * 8

    def __len__(self):
        self.build()
        return self._count

