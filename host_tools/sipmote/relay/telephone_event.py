"""RFC 4733 telephone-events from the caller: one key press reported once.

A key press is a run of packets sharing one RTP timestamp (the event's start), repeated while
the key is held, with the E bit on the last three. The first packet of a new timestamp reports
the key (the agent hears of it as soon as possible); repeats and retransmitted ends are
ignored. A payload shorter than 4 bytes or an event outside 0..16 is dropped. Kept behind this
small class so the relay can move onto ``voip.dtmf`` (the shared core) when it lands.
"""

KEYS = "0123456789*#ABCD"


def parse(payload):
    """(event, end, volume, duration) of an RFC 4733 payload, or None when malformed."""
    if len(payload) < 4:
        return None
    return payload[0], bool(payload[1] & 0x80), payload[1] & 0x3F, (payload[2] << 8) | payload[3]


class TelephoneEventReceiver:
    def __init__(self):
        self._last_timestamp = None

    def feed(self, packet):
        """Feed an RTP packet of the telephone-event payload type; returns a new key or None."""
        fields = parse(packet.payload)
        if fields is None or packet.timestamp == self._last_timestamp:
            return None
        event = fields[0]
        if event > 16:
            return None
        self._last_timestamp = packet.timestamp
        return KEYS[event] if event < 16 else "flash"
