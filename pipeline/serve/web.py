"""`perfreport web`: a small Chinese page to upload a workbook and download its reports.

Server-rendered HTML (FastAPI with Jinja2 templates in `pipeline/serve/webpages/`), no script and no
front-end build. What it shows is read from the input and output folders by `runs.py`, so runs
started by the hot folder, the schedule or the command line appear as well as its own uploads.

An upload is checked like a hot-folder file and more (name, size, a readable and safe .xlsx),
then moved into the input folder under a hidden temporary name and renamed into place, which is
what the hot folder picks up (`uploads.py`). The scoring profile chosen in the page's selector goes
with it (`profilechoice.py`): only a profile the page offered is accepted, and the run it starts
gets it as `--profile`; so does the "同时生成 PDF" checkbox (`--pdf`), offered only where LibreOffice
is installed. A workbook already there under that name is first
copied to output/_archive/, since it is the office's own file. When no other perfreport process
watches the input folder, this one does (`watcher.watch_folder`), and runs each workbook as a
Prefect flow run in one of its warm worker processes (`warm.WarmRunner`): an upload is taken at
once, without the settling wait a copied file needs, and its reports are there in about a second.

Access: on loopback by default, open, but only to requests whose Host is a loopback name with the
listening port (a page of another site whose name was re-pointed at 127.0.0.1 — DNS rebinding —
is refused). Listening on another address needs an access token; with a token every request must
bring it (`?token=` once, which sets a cookie, or an `Authorization: Bearer` header), and Hosts
may be limited to an allow-list (`--allowed-host`, `--public-url`). A POST must come from the
page itself (Origin checked, cookie SameSite=Lax). Downloads are limited to the files a run's
manifest lists, inside its folder. Every answer carries a strict Content-Security-Policy and is
not cached. Served by uvicorn with a time limit on each request head and on a stalled body, and
a limit on connections (`webguard.GuardedH11Protocol`). The HTTP-level guards (Host, Origin, body
limit, headers, protocol) are in `webguard.py`; this module holds the settings, pages and tokens.
"""

from __future__ import annotations

import contextlib
import hmac
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect

from pipeline.config import DEFAULT_MAX_RUNS
from pipeline.docx.pdf import LIBREOFFICE_MISSING, soffice_command
from pipeline.serve import profilechoice, runs, watcher
from pipeline.serve.uploads import (
    UploadRejected,
    remove_stale_parts,
    replaced_upload,
    save_upload,
    upload_id,
    uploaded_name,
)
from pipeline.serve.warm import WarmRunner
from pipeline.serve.webguard import (
    BODY_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    HEAD_TIMEOUT_SECONDS,
    BodyLimit,
    HostCheck,
    RequestGate,
    Scope,
    SecurityHeaders,
    guarded_protocol,
    limit_repeated_logs,
    listening_socket,
    public_origin,
    raise_open_files_limit,
    same_origin,
    same_origin_path,
    security_headers,
)
from pipeline.write import folders
from pipeline.write.names import workbook_output_dir

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
DEFAULT_MAX_UPLOAD_MB = 200  # a province's 100,000-project workbook is about 60 MB
TOKEN_COOKIE = "perfreport_token"
# Multipart framing around the file: boundaries, headers, the field name.
FORM_OVERHEAD = 64 * 1024
REFRESH_SECONDS = 3
UPLOAD_FIELD = "workbook"
PAGES = Path(__file__).resolve().parent / "webpages"


@dataclass(frozen=True, slots=True)
class WebSettings:
    """Where the folders are, who may come in, and how large an upload may be."""

    input_dir: Path = Path("input")
    output_dir: Path = Path("output")
    token: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024
    watch: bool = True  # run the hot-folder watcher here unless another process does
    poll_seconds: float = 2.0
    # None: warm worker processes of this one (`warm.WarmRunner`); tests give their own.
    start_run: watcher.RunStarter | None = None
    max_runs: int = DEFAULT_MAX_RUNS  # workbooks processed at once
    port: int = DEFAULT_PORT  # the listening port, which a loopback Host must name
    allowed_hosts: tuple[str, ...] = ()  # Host names (NAME or NAME:PORT) accepted besides loopback ones
    public_url: str | None = None  # the address a TLS-terminating proxy serves the page at
    secure_cookie: bool = False  # the token cookie only over HTTPS (also when public_url is https)
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    head_timeout: float = HEAD_TIMEOUT_SECONDS
    body_timeout: float = BODY_TIMEOUT_SECONDS


@dataclass
class Watcher:
    """The hot-folder watcher thread this process runs, the event that makes it look now, the
    names of uploads it may take at once, and the warm workers that run them."""

    stop: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    settled: watcher.SettledNames = field(default_factory=watcher.SettledNames)
    thread: threading.Thread | None = None
    warm: WarmRunner | None = None

    def start(self, settings: WebSettings) -> None:
        """Start watching the input folder (it gives way if another process watches already)."""
        start_run = settings.start_run
        if start_run is None:
            # Warmed in the background once this process holds the watcher lock (the page answers
            # meanwhile); beside a `serve` that watches the folder, none are started.
            self.warm = start_run = WarmRunner(settings.max_runs)
        options = watcher.WatchOptions(max_runs=settings.max_runs, settled=self.settled,
                                       on_watching=self.warm.start if self.warm else None)
        self.thread = threading.Thread(
            target=watcher.watch_folder, name="perfreport-hotfolder", daemon=True,
            args=(settings.input_dir, settings.output_dir, self.stop, settings.poll_seconds),
            kwargs={"start_run": start_run, "wake": self.wake, "options": options},
        )
        self.thread.start()

    def uploaded(self, name: str) -> None:
        """An upload was renamed into the input folder whole: take it at the next look, now."""
        self.settled.add(name)
        self.wake.set()

    def close(self) -> None:
        """Stop after the current runs, if any, and end the warm workers."""
        self.stop.set()
        self.wake.set()
        if self.warm is not None:
            if self.thread is not None:
                self.thread.join(timeout=60)
            self.warm.close()


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
    """The request's path and query without `token`, still percent-encoded, as a path of this
    server (never another host's address, whatever the request's path)."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
    path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    return same_origin_path(path) + (f"?{query}" if query else "")


def create_app(settings: WebSettings) -> FastAPI:
    """The web application on `settings`' folders."""
    pages = Jinja2Templates(directory=str(PAGES))
    pages.env.globals.update(zip=zip, run_url=run_url, file_url=file_url, RUNNING=runs.RUNNING,
                             SUCCEEDED=runs.SUCCEEDED, FAILED=runs.FAILED, refresh=REFRESH_SECONDS,
                             max_upload_mb=settings.max_upload_bytes // (1024 * 1024))
    cache = runs.FolderCache()
    watcher = Watcher()
    public = public_origin(settings.public_url)
    # Behind an HTTPS proxy the browser sees https even though this server speaks plain http.
    secure_cookie = settings.secure_cookie or (public or "").startswith("https:")
    check_host = HostCheck(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        with contextlib.suppress(OSError):  # an input folder that cannot be read: the page says so later
            remove_stale_parts(settings.input_dir)
        if settings.watch:
            watcher.start(settings)
        try:
            yield
        finally:
            watcher.close()

    app = FastAPI(title="perfreport", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def page(request: Request, template: str, status: int = 200, **context: object) -> HTMLResponse:
        return pages.TemplateResponse(request, template, context, status_code=status)

    def index_page(request: Request, status: int = 200, error: str = "",
                   chosen: str = profilechoice.AUTOMATIC, pdf: bool = False) -> HTMLResponse:
        listed = runs.list_runs(settings.input_dir, settings.output_dir, cache)
        # Read on every page: an administrator adds a profile by copying a file, no restart.
        return page(request, "index.html", status, runs=listed, error=error,
                    profiles=profilechoice.shipped_options(), chosen=chosen,
                    automatic_label=profilechoice.AUTOMATIC_LABEL,
                    pdf=pdf, pdf_label=profilechoice.PDF_LABEL, pdf_value=profilechoice.PDF_CHECKED,
                    # Looked up on every page: installing LibreOffice needs no restart.
                    pdf_missing="" if soffice_command() else LIBREOFFICE_MISSING,
                    busy=any(r.status == runs.RUNNING for r in listed),
                    watcher_problem=runs.watcher_problem(settings.output_dir))

    def too_large(scope: Scope) -> Response:
        # No run list here: this answer is given before the token is checked.
        return page(Request(scope), "too_large.html", 413)

    def access_refused(request: Request) -> Response | None:
        """The answer that stops a request before any route (a wrong Host, no token, the token's
        redirect, a cross-site POST), or None to let it through."""
        if not check_host(request.scope.get("scheme", "http"), request.headers.get("host")):
            # First, before the token: a page of another site that re-pointed its name at this
            # server (DNS rebinding) must get nothing, not even the token page.
            return page(request, "denied.html", 400, wrong_host=True)
        if settings.token is not None:
            if not has_token(request, settings.token):
                return page(request, "denied.html", 401)
            if request.query_params.get("token") and request.method == "GET":
                # Keep the token out of the address bar, history and logs: a cookie from now on.
                response: Response = RedirectResponse(without_token(request), 303)
                # Lax, not Strict: a link to a run page from the Prefect UI or an e-mail must open it.
                # Cross-site POSTs (the risk Strict would also cover) are refused by the Origin check.
                response.set_cookie(TOKEN_COOKIE, settings.token, httponly=True, samesite="lax",
                                    secure=secure_cookie)
                return response
        if request.method == "POST" and not same_origin(request, public):
            return page(request, "denied.html", 403, cross_site=True)
        return None

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        return index_page(request)

    @app.post("/upload")
    async def upload(request: Request) -> Response:
        try:
            form = await request.form(max_files=1, max_fields=4)
        except ClientDisconnect:  # gone, or cut off by the body timeout: no one to answer
            return Response(status_code=408)
        try:
            return await saved_upload(request, form)
        finally:
            await form.close()

    async def saved_upload(request: Request, form: FormData) -> Response:
        item, given = form.get(UPLOAD_FIELD), form.get(profilechoice.PROFILE_FIELD)
        ticked = form.get(profilechoice.PDF_FIELD)
        try:
            # First, before the file is looked at: a value the page did not offer (a crafted POST,
            # a file under the selector's name) is refused, never saved, never on a command line.
            chosen = profilechoice.offered_choice(given if isinstance(given, str) or given is None else "<file>",
                                                  profilechoice.shipped_options())
            pdf = profilechoice.offered_pdf(ticked if isinstance(ticked, str) or ticked is None else "<file>")
        except profilechoice.ProfileNotOffered as refused_profile:
            return index_page(request, 400, refused_profile.reason)
        if pdf and soffice_command() is None:  # the run would refuse it: say so now, save nothing
            return index_page(request, 400, LIBREOFFICE_MISSING, chosen)
        if not isinstance(item, UploadFile) or not item.filename:
            return index_page(request, 400, "请先选择一个 .xlsx 工作簿再上传。", chosen, pdf)
        name = uploaded_name(item.filename)
        if name is None:
            return index_page(request, 415, f"只接受 Excel 工作簿（.xlsx）：{item.filename}", chosen, pdf)
        refused = folders.name_refusal(name)
        if refused is not None:
            return index_page(request, 400, refused, chosen, pdf)
        try:
            # In a worker thread: copying and hashing tens of megabytes would stall every page.
            saved = await run_in_threadpool(save_upload, item, name, settings.input_dir, settings.output_dir,
                                            settings.max_upload_bytes, chosen, pdf)
        except UploadRejected as rejected:
            return index_page(request, rejected.status, f"{item.filename}：{rejected.reason}", chosen, pdf)
        watcher.uploaded(saved.path.name)
        folder = workbook_output_dir(settings.output_dir, saved.path).name
        # The upload's own content in the address: if a later upload of the name replaces it
        # before its run, its page says so instead of showing the later one's result as its own.
        query = {"upload": upload_id(saved.sha256), **({} if saved.new else {"same": "1"})}
        return RedirectResponse(f"{run_url(folder)}?{urlencode(query)}", 303)

    @app.get("/runs/{name}", response_class=HTMLResponse)
    def run_page(request: Request, name: str) -> HTMLResponse:
        run = runs.find_run(runs.list_runs(settings.input_dir, settings.output_dir, cache), name)
        if run is None:
            return page(request, "missing.html", 404, name=name)
        finished = run.status != runs.RUNNING
        problems = runs.problems_table(settings.output_dir, run, cache) if finished else None
        summary = runs.summary_table(settings.output_dir, run, cache) if run.status == runs.SUCCEEDED else None
        return page(request, "run.html", run=run, problems=problems, summary=summary,
                    bars=runs.chart_bars(summary) if summary else [],
                    same=request.query_params.get("same") == "1",
                    replaced=replaced_upload(request.query_params.get("upload"), run, settings.input_dir,
                                             settings.output_dir, cache),
                    watcher_problem=runs.watcher_problem(settings.output_dir))

    @app.get("/runs/{name}/files/{relative:path}")
    def download(request: Request, name: str, relative: str) -> Response:
        run = runs.find_run(runs.list_runs(settings.input_dir, settings.output_dir, cache), name)
        path = runs.output_file(settings.output_dir, run, relative) if run is not None else None
        if path is None:
            return page(request, "missing.html", 404, name=relative)
        return FileResponse(path, filename=PurePosixPath(relative).name)

    # BodyLimit outside the routes, so an oversized body is refused before anything reads it;
    # SecurityHeaders outermost, so its 413 page carries them too.
    app.add_middleware(RequestGate, refused=access_refused)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + FORM_OVERHEAD, refuse=too_large)
    app.add_middleware(SecurityHeaders, headers=security_headers(PAGES / "base.html"))
    app.state.watcher = watcher
    return app


def serve_web(settings: WebSettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the page until interrupted."""
    import uvicorn

    raise_open_files_limit()
    sock = listening_socket(host, port)
    settings = replace(settings, port=sock.getsockname()[1])  # the port loopback Hosts must name
    # ws="none": the page has no WebSocket, and an upgraded connection would leave the guarded protocol.
    config = uvicorn.Config(create_app(settings), http=guarded_protocol(settings), ws="none", log_level="warning",
                            proxy_headers=False, server_header=False, limit_concurrency=settings.max_connections)
    limit_repeated_logs()  # after Config, which sets uvicorn's logging up
    uvicorn.Server(config).run(sockets=[sock])
