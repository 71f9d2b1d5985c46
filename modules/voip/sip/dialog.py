# voip.sip.dialog: RFC 3261 section 12 dialogs: route set, remote target, CSeq, tags.
# MIT licence.
"""Dialog state and in-dialog requests, sans-I/O.

    dialog = Dialog.from_uac(invite, response, local_contact)   # 2xx or 1xx with a To tag
    dialog = Dialog.from_uas(invite, local_tag, local_contact)  # we answer an INVITE
    dialog.confirm(response)            # UAC: the 2xx of an early dialog (13.2.2.4)
    req = dialog.request("BYE", body=b"", content_type=None)   # new CSeq, Route, R-URI
    ack = dialog.ack(invite_cseq, body=b"")                     # the ACK of a 2xx (13.2.2.4)
    dialog.next_hop() -> (host, port)   # where an in-dialog request goes without a proxy
    dialog.check_request(req) -> 0 or 500                       # 12.2.2 CSeq order
    dialog.target_refresh(msg)          # a re-INVITE or its 2xx: Contact -> remote target

Keys: dialog.id == (call_id, local_tag, remote_tag); request_dialog_id(req) and
response_dialog_id(resp) give the same key for a message received by the UAS or the UAC side.

Requests carry no Via: the transaction layer adds it (its sent_by) with a fresh branch.
"""

from voip.sip.message import NameAddr, Request, SipError, Uri

EARLY = "early"
CONFIRMED = "confirmed"
TERMINATED = "terminated"
_MAX_ROUTES = 16  # a longer Record-Route set is someone's mistake or an attack


def request_dialog_id(request):
    """Dialog key of a request as its recipient sees it (local = To tag)."""
    return (request.call_id, request.to_tag, request.from_tag)


def response_dialog_id(response):
    """Dialog key of a response as the UAC that sent the request sees it (local = From tag)."""
    return (response.call_id, response.from_tag, response.to_tag)


def _contact_uri(msg):
    # A missing or unparsable Contact leaves the caller's fallback target in place.
    contacts = msg.get_all("Contact")
    if not contacts:
        return None
    try:
        return str(NameAddr.parse(contacts[0]).uri)
    except SipError:
        return None


def _record_route(msg):
    routes = msg.get_all("Record-Route")
    if len(routes) > _MAX_ROUTES:
        raise SipError("more than %d Record-Route entries" % _MAX_ROUTES)
    for route in routes:
        NameAddr.parse(route)  # SipError now rather than when a BYE is built
    return list(routes)


def _with_tag(value, tag):
    addr = NameAddr.parse(value)
    addr.params["tag"] = tag
    return str(addr)


def uri_address(uri):
    """(host, port) a request to `uri` goes to (no DNS here: sips defaults to 5061)."""
    if not isinstance(uri, Uri):
        uri = Uri.parse(uri)
    return uri.address(5061 if uri.scheme == "sips" else 5060)


class Dialog:
    def __init__(
        self,
        call_id,
        local_tag,
        remote_tag,
        local_party,
        remote_party,
        remote_target,
        route_set,
        local_seq,
        remote_seq,
        local_contact,
        state=CONFIRMED,
    ):
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        # The From/To header values we put in our requests (each with its tag).
        self.local_party = local_party
        self.remote_party = remote_party
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.local_contact = local_contact
        self.state = state

    @property
    def id(self):
        return (self.call_id, self.local_tag, self.remote_tag)

    def __repr__(self):
        return "<Dialog %s %s>" % (self.call_id, self.state)

    @staticmethod
    def from_uac(request, response, local_contact):
        """RFC 3261 12.1.2: the UAC's dialog from a 2xx or a 1xx with a To tag."""
        to_tag = response.to_tag
        if not to_tag:
            raise SipError("response without To tag creates no dialog")
        routes = _record_route(response)
        routes.reverse()
        return Dialog(
            request.call_id,
            request.from_tag,
            to_tag,
            request.get("From"),
            response.get("To"),
            _contact_uri(response) or str(request.uri),
            routes,
            request.cseq[0],
            None,
            local_contact,
            CONFIRMED if response.status >= 200 else EARLY,
        )

    @staticmethod
    def from_uas(request, local_tag, local_contact, state=CONFIRMED):
        """RFC 3261 12.1.1: the UAS's dialog from the request it answers with a tag.

        An RFC 2543 INVITE may have no Contact: its From URI is the remote target then."""
        remote_target = _contact_uri(request) or str(request.from_addr.uri)
        return Dialog(
            request.call_id,
            local_tag,
            request.from_tag,
            _with_tag(request.get("To"), local_tag),
            request.get("From"),
            remote_target,
            _record_route(request),
            None,
            request.cseq[0],
            local_contact,
            state,
        )

    def confirm(self, response):
        """UAC: a 2xx on an early dialog; route set and target come from the 2xx (13.2.2.4)."""
        routes = _record_route(response)
        routes.reverse()
        self.route_set = routes
        self.target_refresh(response)
        self.remote_party = response.get("To")
        self.state = CONFIRMED

    def target_refresh(self, msg):
        """A re-INVITE (or its 2xx) with a Contact replaces the remote target (12.2)."""
        target = _contact_uri(msg)
        if target:
            self.remote_target = target

    def check_request(self, request):
        """12.2.2: 500 when the CSeq goes backwards, else 0 (and remember it)."""
        method = request.method
        num = request.cseq[0]
        if method in ("ACK", "CANCEL"):
            return 0
        if self.remote_seq is not None and num < self.remote_seq:
            return 500
        self.remote_seq = num
        return 0

    def _route_and_uri(self):
        # 12.2.1.1: loose routing when the first route has `lr`; else the strict-routing form
        # (first route becomes the Request-URI, the remote target goes last in Route).
        if not self.route_set:
            return self.remote_target, []
        first = NameAddr.parse(self.route_set[0])
        if "lr" in first.uri.params:
            return self.remote_target, list(self.route_set)
        uri = first.uri
        for name in ("method", "maddr", "ttl", "transport", "lr"):
            # Parameters not allowed in a Request-URI (19.1.1 table), except transport.
            if name != "transport" and name in uri.params:
                del uri.params[name]
        uri.headers = {}
        return str(uri), list(self.route_set[1:]) + ["<%s>" % self.remote_target]

    def next_hop(self):
        """Where to send an in-dialog request: the first route, else the remote target."""
        if self.route_set:
            return uri_address(NameAddr.parse(self.route_set[0]).uri)
        return uri_address(self.remote_target)

    def _build(self, method, cseq, body, content_type, extra):
        uri, routes = self._route_and_uri()
        req = Request(method, uri)
        for route in routes:
            req.add("Route", route)
        req.add("Max-Forwards", "70")
        req.add("From", self.local_party)
        req.add("To", self.remote_party)
        req.add("Call-ID", self.call_id)
        req.add("CSeq", "%d %s" % (cseq, method))
        if method in ("INVITE", "UPDATE", "SUBSCRIBE", "REFER", "NOTIFY"):
            req.add("Contact", "<%s>" % self.local_contact)
        for name, value in extra:
            req.add(name, value)
        if body:
            req.add("Content-Type", content_type or "application/sdp")
            req.body = body
        return req

    def request(self, method, body=b"", content_type=None, extra=()):
        """A new in-dialog request with the next local CSeq (not for ACK or CANCEL)."""
        if self.local_seq is None:
            self.local_seq = 1
        else:
            self.local_seq += 1
        return self._build(method, self.local_seq, body, content_type, extra)

    def ack(self, invite_cseq, body=b"", content_type=None):
        """The ACK of a 2xx: the INVITE's CSeq number, same Route/R-URI rules (13.2.2.4)."""
        return self._build("ACK", invite_cseq, body, content_type, ())
