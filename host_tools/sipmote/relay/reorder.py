"""A small, bounded reorder window for one RTP stream: in-order packets pass at once, a packet
after a gap waits a little for the missing one.

Sans-I/O: the caller owns the clock and passes ``now_ms`` (any monotonic milliseconds) to every
call, and calls ``expire(now_ms, out)`` once ``deadline_ms`` has come (the media session arms a
timer for it). Every method appends what it releases to the list ``out``, in sequence order::

    window = ReorderWindow(hold_ms=60, stats=stats)
    window.push(seq, item, now_ms, out)   # item: anything; released exactly once, in order
    window.fill(seq, now_ms, out)         # a sequence number the stream used for something
                                          # else (an RFC 4733 event, comfort noise): no gap
    window.expire(now_ms, out)            # give up on gaps whose followers waited hold_ms
    window.deadline_ms                    # when expire() has work next, or None

Rules (sequence numbers compare wraparound-safe, ``voip.seqnum``):
- the next expected number arrives: released at once, with whatever it un-blocks after it;
  while nothing is held this is the only path, so in-order streams gain no latency;
- a later number (a gap before it): held in one of ``slots`` fixed slots until the gap fills or
  the first held packet has waited ``hold_ms``; then the missing numbers are skipped
  (``seq_gaps``) and the held ones released in order. Nothing waits longer than ``hold_ms``;
- a number at least ``slots`` ahead (a long loss, an outage): what is held goes, the gap is
  skipped and this packet released at once: a big jump is not reordering;
- a number already released or skipped, or one already held: dropped (``out_of_order``:
  duplicates and packets later than the window waited);
- a run of ``_RESYNC_PACKETS`` packets far behind (the sender restarted its numbering without a
  new SSRC): the window restarts from them instead of dropping the stream for minutes.

Memory is fixed: ``slots`` (a power of two; 16 = 320 ms of 20 ms packets) entries made once.
Stats (in the dict given): ``out_of_order``, ``reordered`` (arrived after a later packet and
still released in order), ``seq_gaps`` (numbers given up on), ``held`` (packets that waited),
``hold_max_ms`` (the longest wait).
"""

from voip.seqnum import seq_diff

DEFAULT_HOLD_MS = 60
MAX_HOLD_MS = 200
DEFAULT_SLOTS = 16
_RESYNC_PACKETS = 3
_EMPTY = -1
_FILLER = object()  # a slot whose number is used but carries nothing to release
STAT_KEYS = ("out_of_order", "reordered", "seq_gaps", "held", "hold_max_ms")


class ReorderWindow:
    def __init__(self, hold_ms=DEFAULT_HOLD_MS, slots=DEFAULT_SLOTS, stats=None):
        if not 0 <= hold_ms <= MAX_HOLD_MS:
            raise ValueError("hold_ms must be within 0..%d" % MAX_HOLD_MS)
        if slots < 2 or slots & (slots - 1) or slots > 1024:
            raise ValueError("slots must be a power of two within 2..1024")
        self.hold_ms = hold_ms
        self.slots = slots
        self._mask = slots - 1
        self.stats = {} if stats is None else stats
        for key in STAT_KEYS:
            self.stats.setdefault(key, 0)
        self._seq = [_EMPTY] * slots  # the sequence number each slot holds, or _EMPTY
        self._item = [None] * slots
        self._at = [0.0] * slots  # when the held packet arrived
        self._next = None  # the next sequence number to release; None: nothing seen yet
        self._held = 0  # slots in use (fillers included)
        self._behind = 0  # packets far behind in a row (a restarted numbering)
        self._now = 0.0  # the clock as of the last call (for hold_max_ms)
        self.deadline_ms = None

    @property
    def held(self):
        return self._held

    def reset(self):
        """Forget the stream (a new SSRC): held packets are dropped, not released; call
        flush() first to keep them."""
        for i in range(self.slots):
            self._seq[i] = _EMPTY
            self._item[i] = None
        self._next = None
        self._held = 0
        self._behind = 0
        self.deadline_ms = None

    def push(self, seq, item, now_ms, out):
        """A packet arrived; returns False when it was dropped (duplicate or too late)."""
        self._now = now_ms
        return self._arrive(seq, item, now_ms, out)

    def fill(self, seq, now_ms, out):
        """The stream used `seq` for a packet that is not released (an RFC 4733 event, another
        payload type): a follower must not wait for it."""
        self._now = now_ms
        self._arrive(seq, _FILLER, now_ms, out, count=False)

    def flush(self, out, now_ms=None):
        """Release everything held, in order, skipping the gaps (the stream is ending or
        changing)."""
        if now_ms is not None:
            self._now = now_ms
        while self._held:
            self._skip_gap(out)
        self.deadline_ms = None

    def expire(self, now_ms, out):
        """Release what waited hold_ms for a gap, skipping the gap."""
        self._now = now_ms
        while self.deadline_ms is not None and self.deadline_ms <= now_ms:
            self._skip_gap(out)
            self._update_deadline()

    # -- inside --------------------------------------------------------------------------------

    def _arrive(self, seq, item, now_ms, out, count=True):
        seq &= 0xFFFF
        stats = self.stats
        nxt = self._next
        if nxt is None:
            self._next = seq
            nxt = seq
        d = seq_diff(seq, nxt)
        if d < 0:
            if d < -self.slots:
                self._behind += 1
                if self._behind >= _RESYNC_PACKETS:  # the numbering restarted: follow it
                    self.flush(out)
                    self._behind = 0
                    self._next = seq
                    return self._arrive(seq, item, now_ms, out, count)
            if count:
                stats["out_of_order"] += 1
            return False
        self._behind = 0
        if d == 0:
            if self._held:
                if count:
                    stats["reordered"] += 1  # a later one came first and waited for it
            self._release(item, out)
            self._next = (seq + 1) & 0xFFFF
            self._drain(out)
            self._update_deadline()
            return True
        if d >= self.slots:  # beyond the window: a long loss, not reordering
            self.flush(out)
            stats["seq_gaps"] += seq_diff(seq, self._next)
            self._release(item, out)
            self._next = (seq + 1) & 0xFFFF
            return True
        i = seq & self._mask
        if self._seq[i] == seq:
            if self._item[i] is _FILLER and item is not _FILLER:
                self._item[i] = item  # a filler's number reused by audio: the audio wins
                if self.hold_ms:
                    stats["held"] += 1
                return True
            if count:  # already waiting: a duplicate
                stats["out_of_order"] += 1
            return False
        if self._seq[i] != _EMPTY:  # cannot happen: held numbers are within slots of _next
            raise AssertionError("reorder slot %d taken by %d" % (i, self._seq[i]))
        if self._held and count:
            for j in range(self.slots):  # did a later packet arrive before this one?
                s = self._seq[j]
                if s != _EMPTY and seq_diff(s, seq) > 0:
                    stats["reordered"] += 1
                    break
        self._seq[i] = seq
        self._item[i] = item
        self._at[i] = now_ms
        self._held += 1
        if item is not _FILLER and self.hold_ms:
            stats["held"] += 1
        self._update_deadline()
        if self.deadline_ms is not None and self.deadline_ms <= now_ms:  # hold_ms == 0
            self.expire(now_ms, out)
        return True

    def _release(self, item, out):
        if item is not _FILLER:
            out.append(item)

    def _drain(self, out):
        """Release the run of held packets that follows _next."""
        mask = self._mask
        while self._held:
            i = self._next & mask
            if self._seq[i] != self._next:
                return
            self._take(i, out)
            self._next = (self._next + 1) & 0xFFFF

    def _take(self, i, out):
        item = self._item[i]
        self._seq[i] = _EMPTY
        self._item[i] = None
        self._held -= 1
        if item is not _FILLER:
            waited = self._now - self._at[i]
            if waited > self.stats["hold_max_ms"]:
                self.stats["hold_max_ms"] = waited
            out.append(item)

    def _skip_gap(self, out):
        """Skip the missing numbers up to the first held one; release the run from there."""
        mask = self._mask
        skipped = 0
        while self._held and self._seq[self._next & mask] != self._next:
            self._next = (self._next + 1) & 0xFFFF
            skipped += 1
        self.stats["seq_gaps"] += skipped
        self._drain(out)

    def _update_deadline(self):
        if not self._held:
            self.deadline_ms = None
            return
        first = None
        for i in range(self.slots):
            if self._seq[i] != _EMPTY and (first is None or self._at[i] < first):
                first = self._at[i]
        self.deadline_ms = first + self.hold_ms
