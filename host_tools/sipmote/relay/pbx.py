"""The relay registered as an extension of a PBX (Asterisk, FreePBX, Kamailio...).

``PbxRegistration`` drives ``voip.sip.registration.RegistrationClient`` over the relay's own
SIP socket: the client's REGISTERs go out through the endpoint's transaction layer, and the
endpoint hands their responses back (``tx.context``). Refreshes, digest and backoff are the
client's; this shell resolves the registrar, runs the client's timer, logs its events, and
unregisters on shutdown. While it runs, INVITEs from the registrar's address are admitted
without digest (the PBX authenticated its own caller) and reach ``[pbx].agent``.
"""

import asyncio
import contextlib
import logging
import socket

from voip.sip.registration import RegistrationClient

log = logging.getLogger("sipmote.relay.pbx")
_POLL_S = 0.2  # how often events are drained when no client timer is nearer


def parse_registrar(text):
    """("host", port) from "host", "host:port", "[v6]:port" or "sip:host:port;params"."""
    if text.startswith("sip:"):
        text = text[4:]
    text = text.split(";", 1)[0]
    if text.startswith("["):
        end = text.index("]")
        host, rest = text[1:end], text[end + 1 :]
        port = int(rest[1:]) if rest.startswith(":") else 5060
        return host, port
    host, _, port = text.partition(":")
    return host, int(port) if port else 5060


class PbxRegistration:
    def __init__(self, relay, settings):
        self.relay = relay
        self.settings = settings
        self.host, self.port = parse_registrar(settings.registrar)
        self.address = None  # resolved (ip, port)
        self.client = None
        self.state = "resolving"
        self.last_event = None
        self._task = None
        self._stopping = False

    def start(self):
        self._task = asyncio.ensure_future(self._run())

    def status(self):
        return {
            "registrar": "%s:%d" % (self.host, self.port),
            "user": self.settings.user,
            "state": self.client.state if self.client else self.state,
            "registered": bool(self.client and self.client.registered),
            "last": self.last_event,
        }

    async def _resolve(self):
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        family, _, _, _, sockaddr = infos[0]
        return sockaddr[0], sockaddr[1]

    async def _run(self):
        relay = self.relay
        endpoint = relay.endpoint
        while self.address is None:
            try:
                self.address = await self._resolve()
            except OSError as e:
                self.state = "unresolved"
                log.warning(
                    "PBX registrar %s does not resolve (%s); retrying in 30 s", self.host, e
                )
                await asyncio.sleep(30)
        relay.guard.trusted.add(self.address)
        local = relay.local_host_for(self.address[0])
        endpoint.layer.sent_by = (local, endpoint.local_address[1])
        s = self.settings
        self.client = RegistrationClient(
            endpoint.layer,
            user=s.user,
            domain=s.domain or self.host,
            password=s.password or "",
            registrar=self.address,
            contact=relay.contact_uri(s.user, self.address[0]),
            auth_user=s.auth_user,
            expires=s.expires,
            user_agent=relay.cfg.sip.user_agent,
        )
        log.info("registering as %s at %s:%d", self.client.aor, *self.address)
        self.client.register(endpoint.now_ms())
        endpoint.pump()
        while True:
            self._drain()
            deadline = self.client.next_deadline()
            delay = _POLL_S
            if deadline is not None:
                delay = min(delay, max(0, deadline - endpoint.now_ms()) / 1000)
            await asyncio.sleep(delay)
            self.client.tick(endpoint.now_ms())
            endpoint.pump()

    def _drain(self):
        for ev in self.client.events():
            self.last_event = ev.kind
            if ev.kind == "registered":
                log.info("registered with the PBX for %d s", ev.expires)
            elif ev.kind == "registration_failed":
                log.warning(
                    "PBX registration failed: %s %s (retry in %d s)",
                    ev.status,
                    ev.reason or "",
                    (ev.retry_in or 0) // 1000,
                )
            elif ev.kind == "unregistered":
                log.info("unregistered from the PBX")

    async def stop(self, timeout=5):
        """Unregister (bounded wait), then stop the timer task."""
        if self.client is not None and self.client.registered:
            endpoint = self.relay.endpoint
            self.client.unregister(endpoint.now_ms())
            endpoint.pump()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while loop.time() < deadline and self.client.state != "idle":
                await asyncio.sleep(0.05)
                if self.last_event == "unregistered":
                    break
            self._drain()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.address is not None:
            self.relay.guard.trusted.discard(self.address)
