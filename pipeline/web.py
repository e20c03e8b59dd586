"""`perfreport web`: a small Chinese page to upload a workbook and download its reports.

Server-rendered HTML (FastAPI with Jinja2 templates in `pipeline/webpages/`), no script and no
front-end build. What it shows is read from the input and output folders by `runs.py`, so runs
started by the hot folder, the schedule or the command line appear as well as its own uploads.

An upload is checked like a hot-folder file and more (name, size, a readable and safe .xlsx),
then moved into the input folder under a hidden temporary name and renamed into place, which is
what the hot folder picks up. A workbook already there under that name is first copied to
output/_archive/, since it is the office's own file. When no other perfreport process watches
the input folder, this one does (`service.watch_folder`, one `perfreport run` process per file).

Access: on loopback by default, open. Listening on another address needs an access token; with a
token every request must bring it (`?token=` once, which sets a cookie, or an
`Authorization: Bearer` header). A POST must come from the page itself (Origin checked, cookie
SameSite=Lax). Downloads are limited to the files a run's manifest lists, inside its folder.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import shutil
import socket
import threading
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from pipeline import hotfolder, outputs, runs, service
from pipeline.errors import WorkbookRefused

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
DEFAULT_MAX_UPLOAD_MB = 200  # a province's 100,000-project workbook is about 60 MB
TOKEN_COOKIE = "perfreport_token"
# Multipart framing around the file: boundaries, headers, the field name.
FORM_OVERHEAD = 64 * 1024
REFRESH_SECONDS = 3
UPLOAD_FIELD = "workbook"
PAGES = Path(__file__).resolve().parent / "webpages"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WebSettings:
    """Where the folders are, who may come in, and how large an upload may be."""

    input_dir: Path = Path("input")
    output_dir: Path = Path("output")
    token: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024
    watch: bool = True  # run the hot-folder watcher here unless another process does
    poll_seconds: float = 2.0
    start_run: service.RunStarter = field(default=service.run_in_child_process)


def is_loopback(host: str) -> bool:
    """Whether `host` is an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: may resolve to anything


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
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self.refuse(scope)(scope, receive, send)
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
            # except*: the "http" middleware reads the body in a task group, which raises the
            # error inside an ExceptionGroup.
            if not started:
                await self.refuse(scope)(scope, receive, send)


@dataclass
class Watcher:
    """The hot-folder watcher thread this process runs, and the event that makes it look now."""

    stop: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self, settings: WebSettings) -> None:
        """Start watching the input folder (it gives way if another process watches already)."""
        self.thread = threading.Thread(
            target=service.watch_folder, name="perfreport-hotfolder", daemon=True,
            args=(settings.input_dir, settings.output_dir, self.stop, settings.poll_seconds),
            kwargs={"start_run": settings.start_run, "wake": self.wake},
        )
        self.thread.start()

    def close(self) -> None:
        """Stop after the current run, if any."""
        self.stop.set()
        self.wake.set()


def uploaded_name(filename: str | None) -> str | None:
    """The input-folder name for an uploaded file's name, or None when it is not a workbook's.

    The browser's name is only a suggestion: its folder part (either slash) goes, the stem is
    made safe like an output name, and what is left must pass the hot folder's own name rule.
    """
    if not filename:
        return None
    base = PurePosixPath(unicodedata.normalize("NFC", filename).replace("\\", "/")).name
    if not hotfolder.is_workbook_name(base):
        return None
    return outputs.safe_stem(base[: -len(hotfolder.WORKBOOK_SUFFIX)]) + hotfolder.WORKBOOK_SUFFIX


class UploadRejected(Exception):
    """An upload that is not accepted, with the Chinese reason and the HTTP status."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


def save_upload(upload: UploadFile, name: str, settings: WebSettings) -> tuple[Path, bool]:
    """Check an uploaded workbook and put it into the input folder as `name`.

    Returns its path and whether it is new content (False: the same bytes are there already).
    Written under a hidden name the hot folder ignores, checked there, then renamed into place,
    so the watcher never sees a half-written or unchecked file.
    """
    from pipeline.workbook import refuse_unreadable  # pandas and openpyxl: only when needed

    settings.input_dir.mkdir(parents=True, exist_ok=True)
    part = settings.input_dir / f".perfreport-upload-{uuid.uuid4().hex}.part"
    try:
        with part.open("wb") as handle:
            upload.file.seek(0)
            shutil.copyfileobj(upload.file, handle, 1 << 20)
            if handle.tell() > settings.max_upload_bytes:
                raise UploadRejected(f"文件超过上传上限 {settings.max_upload_bytes // (1024 * 1024)} MB。", 413)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            refuse_unreadable(part)
        except WorkbookRefused as exc:
            raise UploadRejected(exc.reason, 415) from None
        target = settings.input_dir / name
        if target.is_file() and outputs.sha256_of(target) == outputs.sha256_of(part):
            return target, False
        if target.exists():
            keep_replaced_input(target, settings.output_dir)
        os.replace(part, target)
        return target, True
    except OSError as exc:  # a read-only share, a full disk, a folder named like the workbook
        raise UploadRejected(f"无法保存到输入文件夹：{exc.strerror or exc}", 500) from None
    finally:
        part.unlink(missing_ok=True)


def keep_replaced_input(target: Path, output_dir: Path) -> Path:
    """Copy a workbook about to be replaced by an upload to output/_archive/<stem>-输入-<time>.xlsx.

    Created exclusively ("xb"): two uploads in one second race for a name, and the loser takes
    the next one instead of overwriting the winner's copy.
    """
    root = hotfolder.archive_root(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime(hotfolder.ARCHIVE_STAMP)
    for _ in range(hotfolder.ARCHIVE_ATTEMPTS):
        kept = hotfolder.archive_path(root, f"{target.stem}-输入", stamp, hotfolder.WORKBOOK_SUFFIX)
        try:
            with target.open("rb") as source, kept.open("xb") as copy:
                shutil.copyfileobj(source, copy, 1 << 20)
        except FileExistsError:
            continue
        shutil.copystat(target, kept)
        return kept
    raise FileExistsError(f"no free archive name for {target.name} in {root}")


def run_url(name: str) -> str:
    """The page of the run of output folder `name`."""
    return f"/runs/{quote(name)}"


def file_url(name: str, relative: str) -> str:
    """The download address of one output file."""
    return f"/runs/{quote(name)}/files/{quote(relative)}"


def tokens_given(request: Request) -> list[str]:
    """Every token a request carries: ?token=, the header, the cookie. Any one may be the right
    one: after the token is changed, a browser still sends the old cookie with the new address."""
    header = request.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
    return [t for t in (request.query_params.get("token"), bearer, request.cookies.get(TOKEN_COOKIE)) if t]


def has_token(request: Request, token: str) -> bool:
    """Whether the request carries `token`, compared in constant time."""
    return any(hmac.compare_digest(given.encode(), token.encode()) for given in tokens_given(request))


def without_token(request: Request) -> str:
    """The request's path and query without `token`, still percent-encoded, as a relative URL."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
    path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    return path + (f"?{query}" if query else "")


def same_origin(request: Request) -> bool:
    """Whether a POST comes from a page of this server. Browsers send Origin with every POST, so
    another site's form is refused (a local page could otherwise upload as the officer); a client
    without one (curl, a script) is not a browser that could be tricked."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def create_app(settings: WebSettings) -> FastAPI:
    """The web application on `settings`' folders."""
    pages = Jinja2Templates(directory=str(PAGES))
    pages.env.globals.update(zip=zip, run_url=run_url, file_url=file_url, RUNNING=runs.RUNNING,
                             SUCCEEDED=runs.SUCCEEDED, FAILED=runs.FAILED, refresh=REFRESH_SECONDS,
                             max_upload_mb=settings.max_upload_bytes // (1024 * 1024))
    cache = runs.FolderCache()
    watcher = Watcher()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.watch:
            watcher.start(settings)
        try:
            yield
        finally:
            watcher.close()

    app = FastAPI(title="perfreport", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def page(request: Request, template: str, status: int = 200, **context: object) -> HTMLResponse:
        return pages.TemplateResponse(request, template, context, status_code=status)

    def index_page(request: Request, status: int = 200, error: str = "") -> HTMLResponse:
        listed = runs.list_runs(settings.input_dir, settings.output_dir, cache)
        return page(request, "index.html", status, runs=listed, error=error,
                    busy=any(r.status == runs.RUNNING for r in listed))

    def too_large(scope: Scope) -> Response:
        # No run list here: this answer is given before the token is checked.
        return page(Request(scope), "too_large.html", 413)

    @app.middleware("http")
    async def require_token(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if settings.token is not None:
            if not has_token(request, settings.token):
                return page(request, "denied.html", 401)
            if request.query_params.get("token") and request.method == "GET":
                # Keep the token out of the address bar, history and logs: a cookie from now on.
                response: Response = RedirectResponse(without_token(request), 303)
                # Lax, not Strict: a link to a run page from the Prefect UI or an e-mail must open it.
                # Cross-site POSTs (the risk Strict would also cover) are refused by the Origin check.
                response.set_cookie(TOKEN_COOKIE, settings.token, httponly=True, samesite="lax")
                return response
        if request.method == "POST" and not same_origin(request):
            return page(request, "denied.html", 403, cross_site=True)
        return await call_next(request)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        return index_page(request)

    @app.post("/upload")
    async def upload(request: Request) -> Response:
        form = await request.form(max_files=1, max_fields=4)
        item = form.get(UPLOAD_FIELD)
        if not isinstance(item, UploadFile) or not item.filename:
            return index_page(request, 400, "请先选择一个 .xlsx 工作簿再上传。")
        name = uploaded_name(item.filename)
        if name is None:
            return index_page(request, 415, f"只接受 Excel 工作簿（.xlsx）：{item.filename}")
        try:
            # In a worker thread: copying and hashing tens of megabytes would stall every page.
            path, new = await run_in_threadpool(save_upload, item, name, settings)
        except UploadRejected as rejected:
            return index_page(request, rejected.status, f"{item.filename}：{rejected.reason}")
        finally:
            await item.close()
        watcher.wake.set()
        folder = outputs.workbook_output_dir(settings.output_dir, path).name
        return RedirectResponse(run_url(folder) + ("" if new else "?same=1"), 303)

    @app.get("/runs/{name}", response_class=HTMLResponse)
    def run_page(request: Request, name: str) -> HTMLResponse:
        run = runs.find_run(runs.list_runs(settings.input_dir, settings.output_dir, cache), name)
        if run is None:
            return page(request, "missing.html", 404, name=name)
        folder = settings.output_dir / run.name
        finished = run.status != runs.RUNNING
        problems = runs.problems_table(folder, cache) if finished else None
        summary = runs.summary_table(folder, cache) if run.status == runs.SUCCEEDED else None
        return page(request, "run.html", run=run, problems=problems, summary=summary,
                    bars=runs.chart_bars(summary) if summary else [],
                    same=request.query_params.get("same") == "1")

    @app.get("/runs/{name}/files/{relative:path}")
    def download(request: Request, name: str, relative: str) -> Response:
        run = runs.find_run(runs.list_runs(settings.input_dir, settings.output_dir, cache), name)
        path = runs.output_file(settings.output_dir, run, relative) if run is not None else None
        if path is None:
            return page(request, "missing.html", 404, name=relative)
        return FileResponse(path, filename=PurePosixPath(relative).name)

    # Outermost, so an oversized body is refused before anything reads it.
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + FORM_OVERHEAD, refuse=too_large)
    app.state.watcher = watcher
    return app


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


def serve_web(settings: WebSettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the page until interrupted."""
    import uvicorn

    sock = listening_socket(host, port)
    config = uvicorn.Config(create_app(settings), log_level="warning", proxy_headers=False,
                            server_header=False)
    uvicorn.Server(config).run(sockets=[sock])
