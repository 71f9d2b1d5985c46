"""REGISTER handling (RFC 3261 10.3) for the relay's configured devices.

The guard has already checked the digest (and that the device registers its own user).
``handle_register(table, request, user, source, now_ms)`` applies the request to the
``BindingTable`` and returns the response to send: 200 listing the user's current bindings
with their expiry, 423 with Min-Expires for too short an interval, 400 for a bad Contact or
``*`` misuse, 500 for an out-of-order CSeq.
"""

import logging

from voip.sip.message import NameAddr, SipError, response_for

from .bindings import OutOfOrder

log = logging.getLogger("sipmote.relay.registrar")
_MAX_CONTACTS = 8


def _expires_header(request, default):
    value = request.get("Expires")
    if value is None:
        return default
    value = value.strip()
    if not value.isdigit() or len(value) > 10:
        raise ValueError("bad Expires")
    return int(value)


def handle_register(table, request, user, source, now_ms, to_tag):
    try:
        contacts = request.get_all("Contact")
        default = _expires_header(request, table.default_expires)
        call_id = request.call_id
        cseq = request.cseq[0]
    except (SipError, ValueError) as e:
        return _error(request, 400, str(e), to_tag)
    if len(contacts) > _MAX_CONTACTS:
        return _error(request, 400, "Too Many Contacts", to_tag)
    try:
        if "*" in [c.strip() for c in contacts]:
            if len(contacts) != 1 or default != 0:
                return _error(request, 400, "Wildcard Contact Needs Expires 0", to_tag)
            table.remove_all(user, call_id, cseq, now_ms)
            log.info("%s unregistered every contact", user)
            return _ok(table, request, user, now_ms, to_tag)
        updates = []
        for value in contacts:
            addr = NameAddr.parse(value)
            if addr.uri.scheme not in ("sip", "sips"):
                return _error(request, 400, "Contact Is Not A SIP URI", to_tag)
            expires = addr.params.get("expires")
            if expires is not None:
                expires = expires.strip('"')
                if not expires.isdigit() or len(expires) > 10:
                    return _error(request, 400, "Bad Contact Expires", to_tag)
                expires = int(expires)
            else:
                expires = default
            if 0 < expires < table.min_expires:
                resp = _error(request, 423, None, to_tag)
                resp.add("Min-Expires", str(table.min_expires))
                return resp
            updates.append((str(addr.uri), table.clamp(expires)))
        if updates:
            table.update(user, updates, call_id, cseq, source, now_ms)
            for contact, expires in updates:
                log.info(
                    "%s %s %s from %s:%d",
                    user,
                    "registered" if expires else "unregistered",
                    contact,
                    source[0],
                    source[1],
                )
    except OutOfOrder as e:
        return _error(request, 500, "Out Of Order: %s" % e, to_tag)
    except SipError as e:
        return _error(request, 400, "Bad Contact: %s" % e, to_tag)
    return _ok(table, request, user, now_ms, to_tag)


def _ok(table, request, user, now_ms, to_tag):
    resp = response_for(request, 200, to_tag=to_tag)
    for binding in table.lookup(user, now_ms):
        resp.add("Contact", "<%s>;expires=%d" % (binding.contact, binding.expires_in(now_ms)))
    return resp


def _error(request, status, reason, to_tag):
    return response_for(request, status, reason, to_tag=to_tag)
