"""Figures of a call from netlab captures (CPython): SIP timings and, per RTP stream, what the
network did and what a receiver's jitter buffer would have made of it.

    packets = capture.stop()                      # netlab.Capture: kernel-timestamped UDP
    sip_timing(packets, "10.77.1.2")              # {"register_ms", "setup_ms", ...}
    streams = rtp_streams(packets, to="10.77.2.2")   # {ssrc: [(t_s, seq, ts, payload), ...]}
    stream_figures(stream, sent=other_capture_packets)   # loss, jitter, playout, MOS

The playout is voip.jitter.JitterBuffer (the device's own) fed with each packet at its capture
time and played every 20 ms from half a frame after the first arrival: "concealed" frames are
those it had to make up (lost, late or not yet there), the longest run of them is the longest
gap a listener would hear, its depth is sampled each tick. The MOS is voip.rtcp.estimate_mos
(G.107, G.711 with concealment) from the frames actually missing at playout, the RFC 3550
jitter, and the mean one-way delay measured between the two captures (same kernel clock).
"""

from voip.jitter import AUDIO, SILENCE_PCMU, JitterBuffer
from voip.rtcp import ReceiverStats, estimate_mos

FRAME_MS = 20


def _first_line(payload):
    return payload.split(b"\r\n", 1)[0].decode("utf-8", "replace")


def _cseq(payload):
    for line in payload.split(b"\r\n"):
        if line[:5].lower() == b"cseq:":
            parts = line[5:].split()
            if len(parts) == 2:
                return parts[1].decode("ascii", "replace")
    return None


def is_sip(payload):
    return payload[:8] == b"SIP/2.0 " or (payload[:1].isalpha() and b" SIP/2.0\r\n" in payload)


def sip_messages(packets, ip):
    """[(t_s, "out"/"in", first line, CSeq method)] of the SIP datagrams `ip` sent/received."""
    out = []
    for t, _outgoing, src, _sport, dst, _dport, payload in packets:
        if ip not in (src, dst) or not is_sip(payload):
            continue
        out.append((t, "out" if src == ip else "in", _first_line(payload), _cseq(payload)))
    return out


def sip_timing(packets, ip):
    """From `ip`'s point of view: ms from its first REGISTER to the 200 for it, from its first
    INVITE to the first 2xx for an INVITE; how many INVITE/REGISTER copies it sent
    (retransmissions and the authenticated retry included)."""
    msgs = sip_messages(packets, ip)

    def span(method):
        first = next((t for t, d, line, _ in msgs if d == "out" and line.startswith(method)),
                     None)
        if first is None:
            return None
        ok = next((t for t, d, line, cseq in msgs if d == "in" and cseq == method
                   and line.startswith("SIP/2.0 2") and t >= first), None)
        return None if ok is None else round((ok - first) * 1000, 1)

    return {
        "register_ms": span("REGISTER"),
        "setup_ms": span("INVITE"),
        "invites_sent": sum(1 for _, d, line, _ in msgs
                            if d == "out" and line.startswith("INVITE")),
        "registers_sent": sum(1 for _, d, line, _ in msgs
                              if d == "out" and line.startswith("REGISTER")),
        "byes": sum(1 for _, _d, line, _ in msgs if line.startswith("BYE")),
    }


def parse_rtp(payload):
    """(ssrc, seq, ts, pt, marker, audio payload) or None for what is not RTP (SIP, RTCP)."""
    if len(payload) < 12 or payload[0] >> 6 != 2:
        return None
    pt = payload[1] & 0x7F
    if 72 <= pt <= 76:  # RTCP 200-204 with the marker bit taken as PT
        return None
    cc = payload[0] & 0x0F
    start = 12 + 4 * cc
    if payload[0] & 0x10 and len(payload) >= start + 4:
        start += 4 + 4 * int.from_bytes(payload[start + 2 : start + 4], "big")
    end = len(payload)
    if payload[0] & 0x20 and end > start:
        end -= payload[-1]
    seq = int.from_bytes(payload[2:4], "big")
    ts = int.from_bytes(payload[4:8], "big")
    ssrc = int.from_bytes(payload[8:12], "big")
    return ssrc, seq, ts, pt, payload[1] >> 7, payload[start:end]


def rtp_streams(packets, to, audio_pts=(0, 8)):
    """{ssrc: [(t_s, seq, ts, payload)]} of the G.711 RTP packets addressed to `to`, as
    captured, duplicates included."""
    streams = {}
    for t, _outgoing, _src, _sport, dst, _dport, payload in packets:
        if dst != to or is_sip(payload):
            continue
        rtp = parse_rtp(payload)
        if rtp is None or rtp[3] not in audio_pts:
            continue
        ssrc, seq, ts, _pt, _m, audio = rtp
        streams.setdefault(ssrc, []).append((t, seq, ts, audio))
    return streams


def one_way_delay_ms(received, sent):
    """Mean ms from a packet's capture on the sending side to its capture on the receiving
    side, matched by (seq, ts); None when nothing matches."""
    first_sent = {}
    for t, seq, ts, _ in sent:
        first_sent.setdefault((seq, ts), t)
    delays = [(t - first_sent[(seq, ts)]) * 1000 for t, seq, ts, _ in received
              if (seq, ts) in first_sent]
    return sum(delays) / len(delays) if delays else None


def playout(stream, target_ms=60, max_ms=100, phase_ms=10):
    """Play the stream through voip.jitter.JitterBuffer as a receiver would; returns the
    frames played, concealed (made up while playing), the longest run of made-up frames in
    ms, mean/max buffer depth in ms, and the buffer's own counters. The playout clock ticks
    every 20 ms from phase_ms after the first arrival (a receiver's clock is not aligned with
    the sender's: half a frame is the average case)."""
    buf = JitterBuffer(frame_bytes=160, frame_ms=FRAME_MS, slots=16, silence=SILENCE_PCMU,
                       min_ms=min(target_ms, 40), max_ms=max_ms)
    out = bytearray(160)
    arrivals = sorted(stream, key=lambda p: p[0])
    t0 = arrivals[0][0]
    end = arrivals[-1][0] + 0.2
    i = 0
    tick = 0
    played = concealed = run = longest = underruns = 0
    depths = []
    started = False
    while True:
        now = t0 + (phase_ms + tick * FRAME_MS) / 1000.0
        if now > end:
            break
        while i < len(arrivals) and arrivals[i][0] <= now:
            t, seq, ts, payload = arrivals[i]
            if len(payload) % 160 == 0 and payload:
                buf.put(seq & 0xFFFF, ts & 0xFFFF, payload, int((t - t0) * 1000))
            i += 1
        status = buf.get(out)
        if buf.playing or status == AUDIO:
            started = True
        if started and i < len(arrivals):  # while the stream lasts
            underruns = buf.underruns
            depths.append(buf.depth_ms)
            if status == AUDIO:
                played += 1
                run = 0
            else:
                concealed += 1
                run += 1
                longest = max(longest, run)
        tick += 1
    return {
        "frames_played": played,
        "frames_concealed": concealed,
        "longest_gap_ms": longest * FRAME_MS,
        "jb_depth_mean_ms": round(sum(depths) / len(depths), 1) if depths else 0,
        "jb_depth_max_ms": max(depths) if depths else 0,
        "jb_late": buf.late,
        "jb_lost": buf.lost,
        "jb_duplicates": buf.duplicates,
        "jb_underruns": underruns,
    }


def _extend(seq, ref):
    """seq as a signed distance from ref (the 16-bit wrap undone near ref)."""
    d = (seq - ref) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


def talkspurts(sent):
    """Ranges (first, last) of sequence numbers, counted from the first packet sent, within
    which the sender's timestamp advanced one frame per packet: a sender that stops between
    utterances (the relay playing the agent) has several; the silence between is not loss."""
    if not sent:
        return []
    ref = sent[0][1]
    order = sorted({(_extend(seq, ref), ts) for _t, seq, ts, _p in sent})
    spurts = []
    first = prev_n = order[0][0]
    prev_ts = order[0][1]
    for n, ts in order[1:]:
        if (ts - prev_ts) & 0xFFFFFFFF != 160 * (n - prev_n):
            spurts.append((first, prev_n))
            first = n
        prev_n, prev_ts = n, ts
    spurts.append((first, prev_n))
    return spurts


def stream_figures(stream, sent=None):
    """Network and playout figures of one received RTP stream; `sent` is the same stream as
    captured where it left (one-way delay, and the sender's talkspurts: the playout is scored
    within them)."""
    stats = ReceiverStats(clock_rate=8000)
    seen = set()
    duplicates = reordered = 0
    highest = None
    gaps = []
    previous_t = None
    for t, seq, ts, _payload in stream:
        stats.receive(seq, ts, int(t * 1000))
        if seq in seen:
            duplicates += 1
        seen.add(seq)
        if highest is not None and ((seq - highest) & 0xFFFF) >= 0x8000:
            reordered += 1
        else:
            highest = seq
        if previous_t is not None:
            gaps.append((t - previous_t) * 1000)
        previous_t = t
    if sent:
        ref = sent[0][1]
        spurts = talkspurts(sent)
    else:
        ref = stream[0][1]
        spurts = [(-0x8000, 0x7FFF)]
    play = None
    for lo, hi in spurts:
        part = [p for p in stream if lo <= _extend(p[1], ref) <= hi]
        if len(part) < 2:
            continue
        one = playout(part)
        if play is None:
            play = one
            continue
        n0 = play["frames_played"] + play["frames_concealed"]
        n1 = one["frames_played"] + one["frames_concealed"]
        if n0 + n1:  # mean depth weighted by the frames each talkspurt lasted
            play["jb_depth_mean_ms"] = round((play["jb_depth_mean_ms"] * n0
                                              + one["jb_depth_mean_ms"] * n1) / (n0 + n1), 1)
        for key in ("frames_played", "frames_concealed", "jb_late", "jb_lost", "jb_duplicates",
                    "jb_underruns"):
            play[key] += one[key]
        play["longest_gap_ms"] = max(play["longest_gap_ms"], one["longest_gap_ms"])
        play["jb_depth_max_ms"] = max(play["jb_depth_max_ms"], one["jb_depth_max_ms"])
    play = play or playout(stream)
    play["talkspurts"] = len(spurts)
    delay = one_way_delay_ms(stream, sent) if sent else None
    frames = play["frames_played"] + play["frames_concealed"]
    missing = play["frames_concealed"] / frames if frames else 0.0
    jitter = stats.jitter_ms()
    figures = {
        "packets": len(stream),
        "expected": stats.expected(),
        "lost": max(0, stats.lost()),
        "loss_pct": round(100 * stats.loss_fraction(), 2),
        "duplicates": duplicates,
        "reordered": reordered,
        "jitter_ms": round(jitter, 1),
        "max_arrival_gap_ms": round(max(gaps), 1) if gaps else 0,
        "delay_ms": None if delay is None else round(delay, 1),
        "mos": round(estimate_mos(min(1.0, missing), jitter, delay or 0.0), 2),
    }
    figures.update(play)
    return figures
