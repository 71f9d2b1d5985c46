"""Per-call logging: a JSON-lines file with timings, and live lines on the console.

Each call writes ``<calls_dir>/<start time>-<call id>.jsonl`` (when a directory is configured):
one JSON object per line, ``{"t": seconds since the call started (monotonic), "time": wall
clock, "call": id, "event": name, ...fields}``. Audio is never logged; transcripts are. The
console gets the human-readable subset (caller and agent transcripts, turns, barge-ins,
errors) through the ``sipmote.relay.call`` logger, which the CLI configures.

``LatencyStats`` keeps a bounded sample of durations (the last ``size`` values) for the
percentiles in the call summary and the benchmark.
"""

import array
import datetime
import json
import logging
import os
import re
import time

console = logging.getLogger("sipmote.relay.call")


class CallLog:
    def __init__(self, call_id, directory=None):
        self.call_id = call_id
        self.t0 = time.monotonic()
        self.path = None
        self._file = None
        if directory:
            os.makedirs(directory, exist_ok=True)
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", call_id)[:80] or "call"
            self.path = os.path.join(directory, "%s-%s.jsonl" % (stamp, safe))
            self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def event(self, name, /, say=None, level=logging.INFO, **fields):
        """Record one event; `say` (if given) also goes to the console at `level`."""
        if say is not None:
            console.log(level, "[%s] %s", self.call_id, say)
        if self._file is None:
            return
        record = {
            "t": round(time.monotonic() - self.t0, 4),
            "time": datetime.datetime.now().isoformat(timespec="milliseconds"),
            "call": self.call_id,
            "event": name,
        }
        record.update(fields)
        try:
            self._file.write(json.dumps(record, default=str) + "\n")
        except (OSError, ValueError):  # disk full, file closed: the call goes on unlogged
            pass

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


class LatencyStats:
    """Durations in seconds; keeps the last `size` samples plus exact count and maximum."""

    def __init__(self, size=3000):  # a minute of 20 ms frames: 24 kB
        self.size = size
        self.reset()

    def reset(self):
        self.samples = array.array("d")
        self.count = 0
        self.max = 0.0
        self._next = 0

    def add(self, value):
        self.count += 1
        if value > self.max:
            self.max = value
        if len(self.samples) < self.size:
            self.samples.append(value)
        else:
            self.samples[self._next] = value
            self._next = (self._next + 1) % self.size

    def percentile(self, p):
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(p / 100.0 * len(ordered)))]

    def summary_ms(self):
        if not self.samples:
            return {"n": 0}
        return {
            "n": self.count,
            "p50_ms": round(self.percentile(50) * 1000, 3),
            "p99_ms": round(self.percentile(99) * 1000, 3),
            "max_ms": round(self.max * 1000, 3),
        }
