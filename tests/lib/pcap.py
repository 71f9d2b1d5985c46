# tests/lib/pcap.py: the smallest pcap reader the RTP tests need: classic libpcap files,
# Ethernet or Linux cooked captures, IPv4/UDP. Runs under CPython and MicroPython. MIT licence.
import struct

_LINK_ETHERNET = 1
_LINK_LINUX_SLL = 113


def udp_payloads(path):
    """Yield (arrival_ms, src_port, dst_port, payload bytes) for each IPv4/UDP packet in the
    file, arrival_ms counted from the first packet. Reads one record at a time: a
    MicroPython heap need not hold the whole capture."""
    with open(path, "rb") as f:
        head = f.read(24)
        magic = head[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            endian = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            endian = ">"
        else:
            raise ValueError("not a pcap file: " + path)
        nanoseconds = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        linktype = struct.unpack_from(endian + "I", head, 20)[0]
        if linktype == _LINK_ETHERNET:
            ip = 14
        elif linktype == _LINK_LINUX_SLL:
            ip = 16
        else:
            raise ValueError("unsupported pcap link type %d" % linktype)
        first_ms = None
        while True:
            record = f.read(16)
            if len(record) < 16:
                return
            sec, frac, captured, _ = struct.unpack(endian + "IIII", record)
            frame = f.read(captured)
            ms = sec * 1000 + (frac // 1000000 if nanoseconds else frac // 1000)
            if first_ms is None:
                first_ms = ms
            if len(frame) < ip + 20 or frame[ip] >> 4 != 4 or frame[ip + 9] != 17:
                continue  # not IPv4/UDP
            udp = ip + 4 * (frame[ip] & 0x0F)
            src_port, dst_port, udp_length = struct.unpack_from(">HHH", frame, udp)
            yield ms - first_ms, src_port, dst_port, frame[udp + 8 : udp + udp_length]


def _ipv4_checksum(header):
    total = 0
    for i in range(0, len(header), 2):
        total += (header[i] << 8) | header[i + 1]
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_udp(path, packets, src=b"\x7f\x00\x00\x01", dst=b"\x7f\x00\x00\x01"):
    """Write [(time_ms, src_port, dst_port, payload)] as an Ethernet/IPv4/UDP pcap file, for
    an independent decoder (tshark) to read what our code sent."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, _LINK_ETHERNET))
    for ident, (time_ms, src_port, dst_port, payload) in enumerate(packets):
        udp = struct.pack(">HHHH", src_port, dst_port, 8 + len(payload), 0) + bytes(payload)
        ip = bytearray(
            struct.pack(">BBHHHBBH", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0, 64, 17, 0)
            + src
            + dst
        )
        struct.pack_into(">H", ip, 10, _ipv4_checksum(ip))
        frame = bytes(12) + b"\x08\x00" + bytes(ip) + udp
        sec, ms = divmod(time_ms, 1000)
        out += struct.pack("<IIII", sec, ms * 1000, len(frame), len(frame)) + frame
    with open(path, "wb") as f:
        f.write(out)
