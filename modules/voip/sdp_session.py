# voip.sdp_session: our side of one call's SDP across re-INVITEs (RFC 3264 section 8).
# MIT licence.
from .sdp import accept_answer, answer, build_offer, new_session_id, parsed


class LocalSession:
    """Our side of one call's SDP across re-INVITEs: one o= session id, and a version that goes
    up by exactly one whenever what we describe changes and stays put when it does not
    (RFC 3264 section 8), plus the last offer we sent so its answer can be checked against it.

    `direction` is what we want: "sendrecv", or "sendonly" to put the peer on hold."""

    def __init__(
        self,
        address,
        port,
        codecs=("PCMU", "PCMA"),
        session_id=None,
        ptime=20,
        telephone_event=101,
        rtcp_mux=False,
        username="-",
    ):
        self.address = address
        self.port = port
        self.codecs = tuple(codecs)
        self.session_id = new_session_id() if session_id is None else session_id
        self.version = 1
        self.ptime = ptime
        self.telephone_event = telephone_event
        self.rtcp_mux = rtcp_mux
        self.username = username
        self.direction = "sendrecv"
        self.last_offer = None  # bytes of the offer awaiting an answer
        self.remote_origin = None  # (username, session id, version) the peer last sent
        self._last_sent = None

    def _versioned(self, build):
        """Build with the current version; if that differs from what we sent last, bump it."""
        body = build(self.version)
        if self._last_sent is not None and body != self._last_sent:
            self.version += 1
            body = build(self.version)
        self._last_sent = body
        return body

    def offer(self, direction=None):
        """An offer (initial or re-offer); direction=None keeps the current one."""
        if direction is not None:
            self.direction = direction

        def build(version):
            return build_offer(
                self.address,
                self.port,
                self.codecs,
                self.session_id,
                version,
                self.direction,
                self.ptime,
                self.telephone_event,
                self.rtcp_mux,
                self.username,
            )

        self.last_offer = self._versioned(build)
        return self.last_offer

    def answer(self, offer, direction=None):
        """(answer bytes, Media) for an offer or re-offer; raises NoCommonCodec/ValueError."""
        if direction is not None:
            self.direction = direction
        offer = parsed(offer)
        result = []

        def build(version):
            body, media = answer(
                offer,
                self.address,
                self.port,
                self.codecs,
                self.session_id,
                version,
                self.direction,
                self.ptime,
                self.telephone_event is not None,
                self.rtcp_mux,
                self.username,
            )
            result.append(media)
            return body

        body = self._versioned(build)
        self._remember(offer)
        return body, result[-1]

    def accept_answer(self, answer_sdp):
        """The Media settled by the answer to our last offer."""
        if self.last_offer is None:
            raise ValueError("no offer of ours is waiting for an answer")
        ans = parsed(answer_sdp)
        media = accept_answer(ans, self.last_offer)
        self.last_offer = None
        self._remember(ans)
        return media

    def is_unchanged(self, sd):
        """True when the peer's description repeats the version it last sent: RFC 3264 section
        8 says it is then identical, so a re-INVITE carrying it is only a session refresh."""
        sd = parsed(sd)
        origin = (sd.origin_username, sd.session_id, sd.session_version)
        return origin == self.remote_origin

    def _remember(self, sd):
        self.remote_origin = (sd.origin_username, sd.session_id, sd.session_version)
