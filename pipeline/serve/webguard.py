"""The HTTP-level protection of `perfreport web`, independent of its pages.

Which Host headers may be served (loopback names with the listening port, then an allow-list or
the public address's host: a page of another site whose name was re-pointed at 127.0.0.1 — DNS
rebinding — is refused), whether a POST comes from the page itself (Origin), the request-body
limit (`BodyLimit`), the security headers of every answer (`SecurityHeaders`), and what uvicorn
lacks: a time limit on each request head and on a stalled body, a limit on connections
(`GuardedH11Protocol`), a limit on repeated log lines (`RepeatLimit`), the open-files limit, and
the listening socket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import h11
from fastapi import Request
from fastapi.responses import Response
from uvicorn.protocols.http.h11_impl import H11Protocol

# Slow or idle clients: a request head must arrive whole within HEAD_TIMEOUT_SECONDS of the
# connection (or of the previous answer), and a body may pause for at most BODY_TIMEOUT_SECONDS.
HEAD_TIMEOUT_SECONDS = 10.0
BODY_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_CONNECTIONS = 200
DEFAULT_PORTS = {"http": 80, "https": 443}
# A Host header: a name or IPv4 literal, or an IPv6 literal in brackets, and an optional port.
# Nothing else (no user part, path or spaces), so what is checked is what a browser resolved.
HOST_HEADER = re.compile(r"(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
                         r"(?::(?P<port>[0-9]{1,5}))?")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class GuardSettings(Protocol):
    """What the guard reads of the page's settings (`web.WebSettings` has them all)."""

    @property
    def port(self) -> int: ...  # the listening port, which a loopback Host must name
    @property
    def token(self) -> str | None: ...
    @property
    def allowed_hosts(self) -> tuple[str, ...]: ...
    @property
    def public_url(self) -> str | None: ...
    @property
    def max_connections(self) -> int: ...
    @property
    def head_timeout(self) -> float: ...
    @property
    def body_timeout(self) -> float: ...


def is_loopback(host: str) -> bool:
    """Whether `host` is an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: may resolve to anything


def host_and_port(value: str) -> tuple[str, int | None] | None:
    """A Host header's name (lower case, an IPv6 literal in brackets) and port, or None when it
    is not a plain `name[:port]`."""
    match = HOST_HEADER.fullmatch(value.strip())
    if match is None:
        return None
    port = int(match["port"]) if match["port"] else None
    return match["name"].lower(), port


def is_loopback_name(name: str) -> bool:
    """Whether a Host name is one only this machine answers to: localhost, 127.0.0.0/8, [::1].

    Literals as browsers write them only: an IPv6 address in brackets, IPv4 in dotted quads.
    """
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name[1:-1]) if name.startswith("[") else ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return address.is_loopback


def public_origin(url: str | None) -> str | None:
    """The origin (scheme://host[:port], the scheme's default port left out) of an address, as a
    browser sends it in Origin; None when `url` is not an http(s) address with a host."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else "")


def host_rules(settings: GuardSettings) -> list[tuple[str, int | None]]:
    """The configured Hosts (--allowed-host and the public address's host) as (name, port), port
    None for any: a name is what DNS rebinding would have to fake, so the name is what counts."""
    rules = [parsed for parsed in map(host_and_port, settings.allowed_hosts) if parsed is not None]
    origin = public_origin(settings.public_url)
    public = host_and_port(urlsplit(origin).netloc) if origin else None
    return [*rules, (public[0], None)] if public else rules


def allowed_host(settings: GuardSettings, scheme: str, host: str | None) -> bool:
    """Whether a request's Host may be served.

    Loopback names with the listening port always (the port may be left out only when it is the
    scheme's default, as browsers do); then the configured names; with none configured, any Host
    when a token guards the page (the token is the guard there), none otherwise.
    """
    parsed = host_and_port(host) if host else None
    if parsed is None:
        return False
    name, port = parsed
    if is_loopback_name(name) and (port if port is not None else DEFAULT_PORTS.get(scheme)) == settings.port:
        return True
    rules = host_rules(settings)
    if not rules:
        return settings.token is not None
    return any(name == allowed and (allowed_port is None or port == allowed_port) for allowed, allowed_port in rules)


class HostCheck:
    """`allowed_host` for one app's settings, remembered per (scheme, Host) value.

    Every request is checked, and the same few Hosts come back all day: parsing a Host and an IP
    address each time cost a tenth of what the listing page takes to serve. Remembering at most
    MAX_REMEMBERED answers keeps a client sending made-up Hosts from growing it.
    """

    MAX_REMEMBERED = 256

    def __init__(self, settings: GuardSettings) -> None:
        self.settings = settings
        self.known: dict[tuple[str, str | None], bool] = {}

    def __call__(self, scheme: str, host: str | None) -> bool:
        key = (scheme, host)
        allowed = self.known.get(key)
        if allowed is None:
            allowed = allowed_host(self.settings, scheme, host)
            if len(self.known) < self.MAX_REMEMBERED:
                self.known[key] = allowed
        return allowed


class RequestGate:
    """ASGI middleware: ask `refused(request)` about every HTTP request before the app sees it,
    and send its answer instead when it gives one.

    A plain ASGI layer rather than starlette's `@app.middleware("http")`, which runs every request
    through a task group and memory streams: a fifth of the listing's cost when served.
    """

    def __init__(self, app: ASGIApp, refused: Callable[[Request], Response | None]) -> None:
        self.app, self.refused = app, refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            answer = self.refused(Request(scope, receive))
            if answer is not None:
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


class UploadTooLarge(Exception):
    """The request body passed the upload limit."""


class BodyLimit:
    """ASGI middleware: refuse a request body over `limit` bytes, before it reaches a disk.

    Content-Length is checked first; a body sent without one (chunked) is counted as it arrives
    and cut off at the limit, so a client cannot fill the disk by leaving the length out.
    """

    def __init__(self, app: ASGIApp, limit: int, refuse: Callable[[Scope], Response]) -> None:
        self.app, self.limit, self.refuse = app, limit, refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self.refuse(scope)(scope, receive, send)
            return
        if declared is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body at all (every GET): nothing to count
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise UploadTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except* UploadTooLarge:
            # except*: a body read inside a task group (starlette's, anyio's) raises the error
            # inside an ExceptionGroup; a plain one is caught as well.
            if not started:
                await self.refuse(scope)(scope, receive, send)


def style_source(template: Path) -> str:
    """The sha256 source of the pages' one inline <style> block, for the Content-Security-Policy:
    the exact text between the tags, which Jinja copies unchanged."""
    text = template.read_text(encoding="utf-8")
    css = text[text.index("<style>") + len("<style>"):text.index("</style>")]
    return "'sha256-" + base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii") + "'"


def security_headers(style_template: Path) -> list[tuple[bytes, bytes]]:
    """What every answer carries. The pages need nothing but their own <style> block (hashed, so
    no inline style or any script can run even if a name ever slipped into the HTML unescaped);
    the SVG chart is markup of the page itself, not a fetched image. Nothing is cached: the pages
    and downloads are the office's data, and a shared or proxy cache must not keep them. Referrer
    same-origin, not no-referrer: with no-referrer browsers send `Origin: null` with the page's own
    upload form, which the Origin check must refuse."""
    policy = (f"default-src 'none'; style-src {style_source(style_template)}; form-action 'self'; "
              "frame-ancestors 'none'; base-uri 'none'")
    return [(b"content-security-policy", policy.encode("ascii")), (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY"), (b"cache-control", b"no-store")]


class SecurityHeaders:
    """ASGI middleware: add `headers` to every answer of the app, error pages included."""

    def __init__(self, app: ASGIApp, headers: list[tuple[bytes, bytes]]) -> None:
        self.app, self.headers = app, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# What starts a path: slashes and backslashes (which browsers read as slashes), and the tabs,
# line breaks and spaces they drop from an address.
LEADING_SLASHES = re.compile(r"^[/\\\x00-\x20]*")


def same_origin_path(path: str) -> str:
    """`path` as an address on this server: whatever slashes or backslashes it starts with made one
    "/", so "//evil.example/" or "/\\evil.example/" cannot become another site's address."""
    return LEADING_SLASHES.sub("/", path, count=1)


def same_origin(request: Request, public: str | None = None) -> bool:
    """Whether a POST comes from a page of this server: its Origin names the Host it was sent to,
    or the public address (`public`, an origin) when a proxy gives another Host. Browsers send
    Origin with every POST, so another site's form is refused (a local page could otherwise
    upload as the officer); a client without one (curl, a script) is not a browser that could be
    tricked."""
    origin = request.headers.get("origin")
    if origin is None or (public is not None and public_origin(origin) == public):
        return True
    return urlsplit(origin).netloc == request.headers.get("host")


def plain_answer(status: int, reason: str, text: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for the protocol to write by itself."""
    body = text.encode("utf-8")
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode("ascii") + body


REQUEST_TIMEOUT_ANSWER = plain_answer(408, "Request Timeout", "请求超时：请求没有在规定时间内发送完。\n")
TOO_MANY_ANSWER = plain_answer(503, "Service Unavailable", "连接过多，请稍后再试。\n")
HEAD, BODY = "head", "body"
guard_logger = logging.getLogger("uvicorn.error")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the limits it lacks: a request head must arrive whole within
    `head_timeout` seconds of being due (the connection opened, or the previous answer was
    sent), a body may stall at most `body_timeout` seconds, and a connection beyond
    `max_connections` is answered 503 and closed at once.

    uvicorn times out only idle keep-alive connections after an answer: a client that opens
    connections and sends nothing, or half a head, or half a body, kept each open for ever,
    until the process ran out of file descriptors and the page was down for everyone.
    """

    head_timeout: float = HEAD_TIMEOUT_SECONDS
    body_timeout: float = BODY_TIMEOUT_SECONDS
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock: asyncio.TimerHandle | None = None
        self.waiting_for = ""  # HEAD, BODY, or "" when the client owes nothing now

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            guard_logger.warning("Connection limit (%d) reached: new connections are refused.", self.max_connections)
            self.close_with(TOO_MANY_ANSWER)
            return
        self.follow_client()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.follow_client(data_arrived=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.follow_client()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_clock()
        super().connection_lost(exc)

    def follow_client(self, data_arrived: bool = False) -> None:
        """Set the clock for what the client owes now: a head (one deadline from when it became
        due, however slowly it trickles in), the rest of a body (restarted by each piece), or
        nothing (the app is answering)."""
        if self.transport.is_closing():
            self.stop_clock()
        elif self.conn.their_state is h11.SEND_BODY:
            if data_arrived or self.waiting_for != BODY:
                self.start_clock(BODY, self.body_timeout)
        elif self.conn.their_state is h11.IDLE:
            if self.waiting_for != HEAD:
                self.start_clock(HEAD, self.head_timeout)
        else:
            self.stop_clock()

    def start_clock(self, waiting_for: str, seconds: float) -> None:
        self.stop_clock()
        self.waiting_for = waiting_for
        self.clock = self.loop.call_later(seconds, self.time_out)

    def stop_clock(self) -> None:
        if self.clock is not None:
            self.clock.cancel()
        self.clock, self.waiting_for = None, ""

    def time_out(self) -> None:
        """The client did not send in time: tell it (408) if it has no answer yet, and close."""
        self.clock = None
        if self.transport.is_closing():
            return
        waiting_for_app = self.flow.read_paused or (self.cycle is not None and self.cycle.waiting_for_100_continue)
        if self.waiting_for == BODY and waiting_for_app:
            # The app is not reading yet (or has not asked for the body): not the client's delay.
            self.start_clock(BODY, self.body_timeout)
            return
        unanswered = self.waiting_for == HEAD or (self.cycle is not None and not self.cycle.response_started)
        self.close_with(REQUEST_TIMEOUT_ANSWER if unanswered else None)

    def close_with(self, answer: bytes | None) -> None:
        self.stop_clock()
        if answer:
            self.transport.write(answer)
        self.transport.close()


def guarded_protocol(settings: GuardSettings) -> type[GuardedH11Protocol]:
    """GuardedH11Protocol with `settings`' limits (uvicorn makes one instance per connection)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {
        "head_timeout": settings.head_timeout, "body_timeout": settings.body_timeout,
        "max_connections": settings.max_connections})


class RepeatLimit(logging.Filter):
    """Let through at most `burst` records of one message per `window` seconds; the first one after
    a window in which some were dropped says how many.

    Under a flood of bad connections uvicorn and asyncio log the same warning or traceback for each
    one: unlimited, that is hundreds of megabytes of log, and a full disk stops the runs too.
    """

    def __init__(self, burst: int = 10, window: float = 60.0, keys: int = 1000) -> None:
        super().__init__()
        self.burst, self.window, self.keys = burst, window, keys
        self.seen: dict[tuple[str, int, str], tuple[float, int]] = {}
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        with self.lock:
            started, count = self.seen.get(key, (now, 0))
            if now - started >= self.window:
                if count > self.burst:
                    record.msg = f"{record.msg} [{count - self.burst} more like this in {self.window:.0f} s not logged]"
                started, count = now, 0
            if len(self.seen) >= self.keys and key not in self.seen:
                self.seen.clear()  # many different messages: start counting afresh rather than grow
            self.seen[key] = (started, count + 1)
            return count < self.burst


LIMITED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "asyncio")


def limit_repeated_logs() -> RepeatLimit:
    """Put one RepeatLimit on the loggers a flood of connections writes to (filters of a logger
    see only the records logged on it, not those of its children, hence each by name)."""
    limit = RepeatLimit()
    for name in LIMITED_LOGGERS:
        logging.getLogger(name).addFilter(limit)
    return limit


def raise_open_files_limit() -> None:
    """Raise this process's soft limit of open files to its hard limit (often 1,024 of 524,288):
    every connection is one, and the connection limit, not the system's, should say no first."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port): OSError now, rather than uvicorn's exit, when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    return sock

