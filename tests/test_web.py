"""`perfreport web`: uploads, access, downloads and run pages, on real folders and real workbooks.

The app is driven in-process with starlette's TestClient (the lifespan runs; `watch=False`, so
nothing starts a run behind the test's back). The outputs the pages show are made once per module
by the real `perfreport run` in a child process: the example workbook (7 projects) and a workbook
with one broken cell. The command-line guards of `perfreport web` run as real child processes too.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import IO
from urllib.parse import quote, unquote, urljoin, urlsplit

import httpx
import pytest
from fastapi import Request
from fastapi.templating import Jinja2Templates
from fastapi.testclient import TestClient
from starlette.datastructures import UploadFile

from pipeline.errors import Status
from pipeline.serve import hotfolder, runs, uploads, watcher, web, webguard
from pipeline.serve.hotfolder import HotfolderState
from pipeline.serve.web import WebSettings, create_app
from pipeline.write.folders import ARCHIVE_DIR
from pipeline.write.locks import (
    held_lock,
    is_running,
    lock_path,
    output_lock,
    record_path,
    took_lock,
)
from pipeline.write.names import MANIFEST_NAME, PROBLEMS_NAME, REPORTS_DIR, SUMMARY_NAME
from tests.conftest import excel_row, valid_sheets, workbook_bytes, write_workbook

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "input" / "2020年度项目支出绩效自评表.xlsx"
EXAMPLE_NAME = EXAMPLE.stem  # its output folder's name, and its run's name on the page
EXAMPLE_PROJECTS = ("领导接访费用", "处理越访、突发事件及办信", "法治宣传教育经费", "信访救助专项资金",
                    "驻京驻宁导访费用", "复查、督办专项经费", "办公设备购置")
INVALID_NAME = "有错误的工作簿"
TOKEN = "0123456789abcdef0123"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOUNDARY = "perfreport-test-boundary-7c1e"
CLI_SECONDS = 600
# The name starlette's TestClient sends as Host: allowed like an administrator's --allowed-host,
# since it is neither a loopback name nor the listening port.
TEST_HOSTS = ("testserver",)


# --- helpers --------------------------------------------------------------------------------


class TableReader(HTMLParser):
    """The header and body cells of one `<table id=...>` of a page, as text."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.depth = 0  # >0 while inside the wanted table
        self.header: list[str] = []
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None
        self.in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (self.depth or dict(attrs).get("id") == self.table_id):
            self.depth += 1
        elif self.depth and tag == "thead":
            self.in_head = True
        elif self.depth and tag == "tr" and not self.in_head:
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth and tag == "thead":
            self.in_head = False
        elif self.depth and tag in ("td", "th") and self.cell is not None:
            text = "".join(self.cell).strip()
            (self.header if self.in_head else self.rows[-1]).append(text)
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def html_table(page: str, table_id: str) -> tuple[list[str], list[list[str]]]:
    """(header cells, body rows) of the table with `table_id` in `page`."""
    reader = TableReader(table_id)
    reader.feed(page)
    return reader.header, reader.rows


def multipart(filename: str, data: bytes, field: str = web.UPLOAD_FIELD) -> tuple[bytes, dict[str, str]]:
    """A hand-built multipart body with one file, and its Content-Type header.

    Built by hand so the file name reaches the server exactly as a browser might send it,
    without the client library quoting or shortening it.
    """
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {XLSX_TYPE}\r\n\r\n").encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode(), {
        "content-type": f"multipart/form-data; boundary={BOUNDARY}"}


def upload(client: TestClient, filename: str, data: bytes, **headers: str) -> httpx.Response:
    """POST one file to /upload as the page's form does, without following the redirect."""
    return client.post("/upload", files={web.UPLOAD_FIELD: (filename, data, XLSX_TYPE)},
                       headers=headers, follow_redirects=False)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def names_in(folder: Path) -> list[str]:
    """Every entry of `folder`, hidden ones included (what an upload may have left behind)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def cli_env() -> dict[str, str]:
    """The environment for child processes: no Prefect server of a test harness, no web token."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("PREFECT_API") and k != "PERFREPORT_WEB_TOKEN"}


@dataclass(frozen=True)
class Folders:
    input_dir: Path
    output_dir: Path

    def settings(self, **options: object) -> WebSettings:
        return WebSettings(input_dir=self.input_dir, output_dir=self.output_dir, watch=False,
                           **{"allowed_hosts": TEST_HOSTS, **options})


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    (tmp_path / "input").mkdir()
    (tmp_path / "output").mkdir()
    return Folders(tmp_path / "input", tmp_path / "output")


@pytest.fixture
def client(folders: Folders) -> Iterator[TestClient]:
    with TestClient(create_app(folders.settings())) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def example_bytes() -> bytes:
    return EXAMPLE.read_bytes()


# --- real outputs, made once per module by the real command line ----------------------------


def perfreport_run(workbook: Path, output_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(workbook), "--output-dir", str(output_dir)],
        capture_output=True, text=True, timeout=CLI_SECONDS, cwd=REPO, env=cli_env(), check=False)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Folders:
    """input/ and output/ after `perfreport run` on the example (exit 0) and on a workbook with
    one broken cell (exit 1: only 校验报告.xlsx and the manifest)."""
    root = tmp_path_factory.mktemp("published")
    found = Folders(root / "input", root / "output")
    found.input_dir.mkdir()
    example = Path(shutil.copy2(EXAMPLE, found.input_dir / EXAMPLE.name))
    done = perfreport_run(example, found.output_dir)
    assert done.returncode == 0, done.stderr

    broken = valid_sheets()
    broken["资金"][1]["全年执行数(万元)"] = "5万元"  # a unit typed into a number cell: an error
    invalid = write_workbook(found.input_dir / f"{INVALID_NAME}.xlsx", broken)
    done = perfreport_run(invalid, found.output_dir)
    assert done.returncode == 1, done.stderr
    assert names_in(found.output_dir / INVALID_NAME) == [MANIFEST_NAME, PROBLEMS_NAME]
    return found


@pytest.fixture
def published_copy(published: Folders, tmp_path: Path) -> Folders:
    """A private copy of the published folders, for tests that change them."""
    copy = Folders(tmp_path / "input", tmp_path / "output")
    shutil.copytree(published.input_dir, copy.input_dir, symlinks=True)
    shutil.copytree(published.output_dir, copy.output_dir, symlinks=True)
    return copy


REFUSED = {404}


def refusing_client(settings: WebSettings) -> TestClient:
    """A client that gets the server's error answer instead of its exception, as a browser does."""
    return TestClient(create_app(settings), raise_server_exceptions=False)


def assert_not_served(answer: httpx.Response, *forbidden: bytes) -> None:
    assert answer.status_code in REFUSED, answer.status_code
    for data in forbidden:
        assert data not in answer.content


def listed_outputs(folder: Path) -> list[str]:
    manifest = runs.read_manifest(folder)
    assert manifest is not None
    return [str(entry["path"]) for entry in manifest["outputs"]]  # type: ignore[union-attr]


# --- uploads ----------------------------------------------------------------------------------


def test_an_upload_lands_in_input_byte_identical_and_redirects_to_its_waiting_run(
        client: TestClient, folders: Folders, example_bytes: bytes) -> None:
    answer = upload(client, EXAMPLE.name, example_bytes)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/runs/" + quote(EXAMPLE_NAME) + f"?upload={sha256(example_bytes)[:16]}"
    # Only the workbook itself: the hidden temporary name it was written under is gone.
    assert names_in(folders.input_dir) == [EXAMPLE.name]
    assert (folders.input_dir / EXAMPLE.name).read_bytes() == example_bytes
    # Nothing runs it here (watch=False), so it waits: 处理中 / 等待开始, and the page refreshes.
    page = client.get(answer.headers["location"])
    assert page.status_code == 200
    assert 'id="status">处理中<' in page.text and "等待开始" in page.text
    assert 'http-equiv="refresh"' in page.text
    assert "处理中" in client.get("/").text


def test_uploading_the_same_bytes_again_says_so_and_archives_nothing(
        client: TestClient, folders: Folders, example_bytes: bytes) -> None:
    assert upload(client, EXAMPLE.name, example_bytes).status_code == 303

    again = upload(client, EXAMPLE.name, example_bytes)

    assert again.status_code == 303
    assert again.headers["location"] == "/runs/" + quote(EXAMPLE_NAME) + f"?upload={sha256(example_bytes)[:16]}&same=1"
    assert not hotfolder.archive_root(folders.output_dir).exists()
    assert names_in(folders.input_dir) == [EXAMPLE.name]
    assert "内容相同" in client.get(again.headers["location"]).text


def test_a_corrected_upload_keeps_the_replaced_input_in_the_archive(
        client: TestClient, folders: Folders, example_bytes: bytes) -> None:
    (folders.input_dir / EXAMPLE.name).write_bytes(example_bytes)  # the office's own file
    corrected = workbook_bytes("改正版")

    answer = upload(client, EXAMPLE.name, corrected)

    assert answer.status_code == 303 and "same" not in answer.headers["location"]
    assert (folders.input_dir / EXAMPLE.name).read_bytes() == corrected
    kept = list(hotfolder.archive_root(folders.output_dir).iterdir())
    assert len(kept) == 1
    assert kept[0].name.startswith(f"{EXAMPLE_NAME}-输入-") and kept[0].suffix == ".xlsx"
    assert kept[0].read_bytes() == example_bytes


def test_an_earlier_kept_input_is_never_overwritten(folders: Folders) -> None:
    """Two replacements of one workbook within a second (an officer uploading twice quickly).
    Kept inputs named for this second and the next two exist already, so whatever second
    keep_replaced_input runs in, its first-choice name is taken: no dependence on timing."""
    root = hotfolder.archive_root(folders.output_dir)
    root.mkdir()
    now = datetime.now()
    earlier = {root / f"预算-输入-{(now + timedelta(seconds=s)).strftime(hotfolder.ARCHIVE_STAMP)}.xlsx"
               for s in range(3)}
    for path in earlier:
        path.write_bytes(b"an earlier kept input")
    target = folders.input_dir / "预算.xlsx"
    target.write_bytes(workbook_bytes("当前版"))

    kept = uploads.keep_replaced_input(target, folders.output_dir)

    assert kept.read_bytes() == target.read_bytes()
    assert kept not in earlier
    assert sorted(p.name for p in earlier if p.read_bytes() != b"an earlier kept input") == []


def test_a_replaced_input_with_a_dot_in_its_name_is_kept_under_its_full_name(
        client: TestClient, folders: Folders) -> None:
    upload(client, "预算.v2.xlsx", workbook_bytes("第一版"))
    upload(client, "预算.v2.xlsx", workbook_bytes("第二版"))

    kept = [p.name for p in hotfolder.archive_root(folders.output_dir).iterdir()]
    assert len(kept) == 1
    assert kept[0].startswith("预算.v2-输入-"), kept


@pytest.mark.parametrize("filename", ["a.xls", "~$a.xlsx", ".hidden.xlsx", "a.xlsx.part", "a.csv",
                                      "a.xlsx.tmp", "a"])
def test_a_file_name_that_is_not_a_workbook_name_is_refused_and_nothing_is_written(
        client: TestClient, folders: Folders, example_bytes: bytes, filename: str) -> None:
    answer = upload(client, filename, example_bytes)

    assert answer.status_code == 415
    assert "只接受 Excel 工作簿" in answer.text
    assert names_in(folders.input_dir) == [] and names_in(folders.output_dir) == []


@pytest.mark.parametrize(("content", "reason"), [
    ("项目编号,项目名称\nP-1,测试\n".encode(), "不是 Excel 工作簿（.xlsx）"),
    (bytes(range(256)) * 40, "不是 Excel 工作簿（.xlsx）"),
    (b"", "文件是空的（0 字节）"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "旧版 Excel 97-2003 (.xls)"),
], ids=["csv-text", "random-bytes", "empty", "old-xls-renamed"])
def test_content_that_is_not_a_workbook_is_refused_with_the_reason_and_nothing_is_kept(
        client: TestClient, folders: Folders, content: bytes, reason: str) -> None:
    answer = upload(client, "数据.xlsx", content)

    assert answer.status_code == 415
    assert reason in answer.text and "数据.xlsx" in answer.text
    assert names_in(folders.input_dir) == []


def test_an_upload_without_a_file_is_refused_with_a_hint(client: TestClient, folders: Folders) -> None:
    answer = client.post("/upload", data={"other": "x"}, follow_redirects=False)

    assert answer.status_code == 400 and "请先选择" in answer.text
    assert names_in(folders.input_dir) == []


def test_an_upload_that_cannot_be_saved_says_why_and_leaves_nothing_behind(
        client: TestClient, folders: Folders, example_bytes: bytes) -> None:
    (folders.input_dir / "预算.xlsx").mkdir()  # a folder where the workbook would go

    answer = upload(client, "预算.xlsx", example_bytes)

    assert answer.status_code == 500 and "无法保存到输入文件夹" in answer.text
    assert names_in(folders.input_dir) == ["预算.xlsx"] and (folders.input_dir / "预算.xlsx").is_dir()


# --- the size limit ------------------------------------------------------------------------


LIMIT = 10_000  # smaller than the example (18.6 kB), so the example itself is too large


@pytest.fixture
def small_limit_client(folders: Folders) -> Iterator[TestClient]:
    with TestClient(create_app(folders.settings(max_upload_bytes=LIMIT))) as test_client:
        yield test_client


def test_an_upload_over_the_body_limit_with_content_length_is_refused_and_leaves_nothing(
        small_limit_client: TestClient, folders: Folders) -> None:
    body, headers = multipart("大.xlsx", b"x" * (LIMIT + web.FORM_OVERHEAD + 1))
    request = small_limit_client.build_request("POST", "/upload", content=body, headers=headers)
    assert int(request.headers["content-length"]) == len(body)

    answer = small_limit_client.send(request, follow_redirects=False)

    assert answer.status_code == 413 and "文件太大" in answer.text
    assert names_in(folders.input_dir) == []


def send_chunked(folders: Folders, data: bytes) -> httpx.Response:
    """POST `data` as the upload to an app with the small limit, without a Content-Length."""
    body, headers = multipart("大.xlsx", data)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    with refusing_client(folders.settings(max_upload_bytes=LIMIT)) as test_client:
        request = test_client.build_request("POST", "/upload", content=chunks(), headers=headers)
        # The client cannot know a generator's length: this is what a client that leaves the
        # length out looks like, and the limit must then hold by counting.
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        return test_client.send(request, follow_redirects=False)


def test_an_upload_over_the_body_limit_sent_chunked_leaves_nothing_in_input(folders: Folders) -> None:
    answer = send_chunked(folders, b"x" * (LIMIT + web.FORM_OVERHEAD + 1))

    assert answer.status_code >= 400
    assert names_in(folders.input_dir) == []


def test_an_upload_over_the_body_limit_sent_chunked_answers_413(folders: Folders) -> None:
    answer = send_chunked(folders, b"x" * (LIMIT + web.FORM_OVERHEAD + 1))

    assert answer.status_code == 413 and "文件太大" in answer.text


def test_a_workbook_over_the_upload_limit_but_within_the_form_overhead_is_refused(
        small_limit_client: TestClient, folders: Folders, example_bytes: bytes) -> None:
    assert LIMIT < len(example_bytes) < LIMIT + web.FORM_OVERHEAD  # passes the middleware

    answer = upload(small_limit_client, EXAMPLE.name, example_bytes)

    assert answer.status_code == 413 and "超过上传上限" in answer.text
    assert names_in(folders.input_dir) == []


def test_a_workbook_under_the_limit_is_accepted(folders: Folders) -> None:
    data = workbook_bytes("小")
    with TestClient(create_app(folders.settings(max_upload_bytes=len(data)))) as test_client:
        assert upload(test_client, "小.xlsx", data).status_code == 303
    assert (folders.input_dir / "小.xlsx").read_bytes() == data


# --- names from the browser ------------------------------------------------------------------


@pytest.mark.parametrize("filename", ["../../evil.xlsx", "C:\\Users\\x\\..\\evil.xlsx", "..\\..\\evil.xlsx",
                                      "/etc/evil.xlsx", "sub/dir/evil.xlsx"])
def test_the_folder_part_of_a_browser_file_name_is_dropped(
        client: TestClient, folders: Folders, tmp_path: Path, filename: str) -> None:
    body, headers = multipart(filename, workbook_bytes("evil"))

    answer = client.post("/upload", content=body, headers=headers, follow_redirects=False)

    assert answer.status_code == 303
    assert names_in(folders.input_dir) == ["evil.xlsx"]
    # Nowhere else: not elsewhere under the test's folder, not where the folder part pointed.
    assert list(tmp_path.rglob("evil.xlsx")) == [folders.input_dir / "evil.xlsx"]
    for escaped in (tmp_path.parent / "evil.xlsx", tmp_path.parent.parent / "evil.xlsx",
                    Path("/etc/evil.xlsx"), REPO / "evil.xlsx"):
        assert not escaped.exists()


# --- access ------------------------------------------------------------------------------


@pytest.fixture
def guarded(folders: Folders, example_bytes: bytes) -> Iterator[TestClient]:
    """A token-protected app with one workbook waiting in input/ (so a listing would name it)."""
    (folders.input_dir / EXAMPLE.name).write_bytes(example_bytes)
    with TestClient(create_app(folders.settings(token=TOKEN))) as test_client:
        yield test_client


def test_without_the_token_nothing_is_shown(guarded: TestClient) -> None:
    for path in ("/", "/runs/" + quote(EXAMPLE_NAME)):
        answer = guarded.get(path)
        assert answer.status_code == 401
        assert "需要访问令牌" in answer.text
        assert EXAMPLE_NAME not in answer.text and "等待开始" not in answer.text
        assert 'id="runs"' not in answer.text and 'id="status"' not in answer.text


@pytest.mark.parametrize("how", ["query", "bearer", "cookie"])
def test_a_wrong_token_is_refused(guarded: TestClient, how: str) -> None:
    wrong = TOKEN[:-1] + "9"
    if how == "query":
        answer = guarded.get(f"/?token={wrong}", follow_redirects=False)
    elif how == "bearer":
        answer = guarded.get("/", headers={"Authorization": f"Bearer {wrong}"})
    else:
        guarded.cookies.set(web.TOKEN_COOKIE, wrong)
        answer = guarded.get("/")
    assert answer.status_code == 401
    assert EXAMPLE_NAME not in answer.text


def test_the_token_in_the_address_becomes_a_lax_http_only_cookie(guarded: TestClient) -> None:
    answer = guarded.get(f"/runs/{quote(EXAMPLE_NAME)}?token={TOKEN}", follow_redirects=False)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/runs/" + quote(EXAMPLE_NAME)  # no token in the address
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{web.TOKEN_COOKIE}={TOKEN};")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    # The client keeps the cookie, as a browser does: the pages now open without the token.
    for path in ("/", "/runs/" + quote(EXAMPLE_NAME)):
        page = guarded.get(path)
        assert page.status_code == 200 and EXAMPLE.name in page.text


def test_the_token_redirect_leads_back_to_the_same_run_whatever_its_name(
        folders: Folders, example_bytes: bytes) -> None:
    (folders.input_dir / "预算%41.xlsx").write_bytes(example_bytes)
    with TestClient(create_app(folders.settings(token=TOKEN))) as guarded:
        answer = guarded.get(web.run_url("预算%41") + f"?same=1&token={TOKEN}", follow_redirects=False)

    assert answer.headers["location"] == web.run_url("预算%41") + "?same=1"


def test_a_bearer_token_opens_the_pages(guarded: TestClient) -> None:
    answer = guarded.get("/", headers={"Authorization": f"Bearer {TOKEN}"})

    assert answer.status_code == 200 and EXAMPLE.name in answer.text


def test_a_new_token_in_the_address_replaces_an_old_cookie(guarded: TestClient) -> None:
    guarded.cookies.set(web.TOKEN_COOKIE, "an-old-token-from-last-year")

    answer = guarded.get(f"/?token={TOKEN}", follow_redirects=False)

    assert answer.status_code == 303
    assert f"{web.TOKEN_COOKIE}={TOKEN};" in answer.headers["set-cookie"]


def test_without_the_token_nothing_can_be_downloaded_or_uploaded(
        published: Folders, tmp_path: Path, example_bytes: bytes) -> None:
    inbox = tmp_path / "input"
    inbox.mkdir()
    settings = WebSettings(input_dir=inbox, output_dir=published.output_dir, token=TOKEN, watch=False,
                           allowed_hosts=TEST_HOSTS)
    with TestClient(create_app(settings)) as guarded:
        download = guarded.get(f"/runs/{quote(EXAMPLE_NAME)}/files/{quote(SUMMARY_NAME)}")
        refused_upload = upload(guarded, "新.xlsx", example_bytes)
        allowed = guarded.get(f"/runs/{quote(EXAMPLE_NAME)}/files/{quote(SUMMARY_NAME)}",
                              headers={"Authorization": f"Bearer {TOKEN}"})

    assert download.status_code == 401 and download.content != (
        published.output_dir / EXAMPLE_NAME / SUMMARY_NAME).read_bytes()
    assert refused_upload.status_code == 401
    assert names_in(inbox) == []
    assert allowed.status_code == 200  # the same request with the token: it was only the token


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://testserver.evil.example",
                                    "https://127.0.0.1:8000"])
def test_a_cross_site_post_is_refused_and_nothing_is_saved(
        client: TestClient, folders: Folders, example_bytes: bytes, origin: str) -> None:
    answer = upload(client, EXAMPLE.name, example_bytes, Origin=origin)

    assert answer.status_code == 403 and "不接受来自其他网站的提交" in answer.text
    assert names_in(folders.input_dir) == []


def test_a_same_origin_post_is_accepted(client: TestClient, folders: Folders, example_bytes: bytes) -> None:
    answer = upload(client, EXAMPLE.name, example_bytes, Origin="http://testserver")

    assert answer.status_code == 303
    assert names_in(folders.input_dir) == [EXAMPLE.name]


# --- downloads ---------------------------------------------------------------------------


@pytest.fixture
def published_client(published: Folders) -> Iterator[TestClient]:
    settings = WebSettings(input_dir=published.input_dir, output_dir=published.output_dir, watch=False,
                           allowed_hosts=TEST_HOSTS)
    with refusing_client(settings) as test_client:
        yield test_client


def test_every_listed_output_downloads_with_its_bytes_and_name(
        published_client: TestClient, published: Folders) -> None:
    folder = published.output_dir / EXAMPLE_NAME
    listed = listed_outputs(folder)
    wanted = [f"{EXAMPLE_NAME}_报告.zip", SUMMARY_NAME, PROBLEMS_NAME,
              f"{REPORTS_DIR}/RG2020-004_信访救助专项资金.docx"]
    assert set(wanted) <= set(listed)

    for relative in listed:
        answer = published_client.get(web.file_url(EXAMPLE_NAME, relative))
        assert answer.status_code == 200, relative
        assert answer.content == (folder / relative).read_bytes(), relative
        disposition = answer.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert unquote(disposition.split("''", 1)[1]) == Path(relative).name


@pytest.mark.parametrize("tail", [
    "../manifest.json",
    "reports/../../../../../etc/passwd",
    "%2e%2e/manifest.json",
    "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "..%2f.perfreport-hotfolder.json",
    "..%5c..%5cetc%5cpasswd",
    "..%5cmanifest.json",
    "reports/%2e%2e/" + quote(SUMMARY_NAME),  # resolves inside the folder, yet not listed
    "%2e/" + quote(SUMMARY_NAME),  # "./汇总表.xlsx" once decoded
    "%2Fetc%2Fpasswd",
    "/etc/passwd",
    "%2F" + quote(str(REPO / "pyproject.toml")),
    quote(MANIFEST_NAME),  # in the folder, but the manifest does not list itself
    "reports",
    "",
], ids=lambda tail: tail or "empty")
def test_a_path_the_manifest_does_not_list_is_not_served(
        published_client: TestClient, tail: str) -> None:
    answer = published_client.get(f"/runs/{quote(EXAMPLE_NAME)}/files/{tail}")

    assert_not_served(answer, b"root:", b'"sha256"', b"[tool.ruff]", b"PK\x03\x04")


@pytest.mark.parametrize("relative", ["../manifest.json", "../../etc/passwd", "/etc/passwd", "..\\manifest.json",
                                      "reports/../汇总表.xlsx", "manifest.json", "reports/", ""])
def test_output_file_refuses_unlisted_names_given_as_is(published: Folders, relative: str) -> None:
    """The raw strings, as the route hands them over: an HTTP client normalizes some of them away."""
    run = runs.find_run(runs.list_runs(published.input_dir, published.output_dir, runs.FolderCache()), EXAMPLE_NAME)
    assert run is not None

    assert runs.output_file(published.output_dir, run, relative) is None


@pytest.mark.parametrize("planted", ["extra.txt", ".secret.docx", "reports/extra.docx"])
def test_a_file_planted_in_a_run_folder_is_not_served(published_copy: Folders, planted: str) -> None:
    (published_copy.output_dir / EXAMPLE_NAME / planted).write_bytes(b"not an output")
    # The copy, so the module's outputs stay as published.
    with refusing_client(published_copy.settings()) as test_client:
        answer = test_client.get(f"/runs/{quote(EXAMPLE_NAME)}/files/{quote(planted)}")
    assert_not_served(answer, b"not an output")


def test_the_lock_file_beside_a_run_folder_is_not_served(published_copy: Folders) -> None:
    with output_lock(published_copy.output_dir / EXAMPLE_NAME), \
            refusing_client(published_copy.settings()) as test_client:
        lock = lock_path(published_copy.output_dir / EXAMPLE_NAME).name
        answers = [test_client.get(f"/runs/{quote(EXAMPLE_NAME)}/files/{tail}")
                   for tail in (f"..%2F{quote(lock)}", f"%2e%2e/{quote(lock)}", quote(lock))]
    for answer in answers:
        assert_not_served(answer)


@pytest.mark.parametrize("linked", ["report", "reports-folder", "run-folder"])
def test_a_listed_output_replaced_by_a_link_leading_out_is_not_served(
        published_copy: Folders, tmp_path: Path, linked: str) -> None:
    outside = Path("/etc/hostname")
    assert outside.is_file()
    folder = published_copy.output_dir / EXAMPLE_NAME
    relative = f"{REPORTS_DIR}/RG2020-001_领导接访费用.docx"
    if linked == "report":
        (folder / relative).unlink()
        (folder / relative).symlink_to(outside)
    elif linked == "reports-folder":
        # A reports folder elsewhere holding a file of the same name: the link leads out of the run.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        shutil.copy2(outside, elsewhere / Path(relative).name)
        shutil.rmtree(folder / REPORTS_DIR)
        (folder / REPORTS_DIR).symlink_to(elsewhere)
    else:
        moved = tmp_path / "moved-run"
        folder.rename(moved)
        (moved / relative).unlink()
        (moved / relative).symlink_to(outside)
        folder.symlink_to(moved)
    with refusing_client(published_copy.settings()) as test_client:
        answer = test_client.get(web.file_url(EXAMPLE_NAME, relative))

    assert_not_served(answer, outside.read_bytes())


def test_an_unknown_run_and_the_archive_are_not_served(published_copy: Folders) -> None:
    # An archived run, manifest and all, as the hot folder leaves it.
    archived = f"{EXAMPLE_NAME}-20200101-080000"
    root = hotfolder.archive_root(published_copy.output_dir)
    shutil.copytree(published_copy.output_dir / EXAMPLE_NAME, root / archived)
    summary = quote(SUMMARY_NAME)
    with refusing_client(published_copy.settings()) as test_client:
        answers = {
            "unknown": test_client.get(f"/runs/{quote('没有这个')}/files/{summary}"),
            "unknown-page": test_client.get(f"/runs/{quote('没有这个')}"),
            "archive-page": test_client.get(f"/runs/{ARCHIVE_DIR}"),
            "archive-file": test_client.get(f"/runs/{ARCHIVE_DIR}/files/{quote(archived)}/{summary}"),
            "archived-run": test_client.get(f"/runs/{quote(archived)}/files/{summary}"),
            "hidden-state": test_client.get(f"/runs/{quote(hotfolder.STATE_NAME)}"),
        }
        index = test_client.get("/").text

    archived_summary = (root / archived / SUMMARY_NAME).read_bytes()
    for answer in answers.values():
        assert_not_served(answer, archived_summary)
    assert archived not in index
    assert f'href="{web.run_url(ARCHIVE_DIR)}"' not in index


@pytest.mark.parametrize("path", [f"/runs/{quote('没有这个')}",
                                  f"/runs/{quote(EXAMPLE_NAME)}/files/{quote('没有这个.docx')}"])
def test_an_unknown_run_or_file_answers_the_not_found_page(published_client: TestClient, path: str) -> None:
    answer = published_client.get(path)

    assert answer.status_code == 404
    assert "找不到" in answer.text and "没有这个" in answer.text


# --- what the pages show ---------------------------------------------------------------------


def test_a_successful_run_shows_its_summary_chart_and_downloads(
        published_client: TestClient, published: Folders) -> None:
    index = published_client.get("/")
    assert index.status_code == 200
    _, listed = html_table(index.text, "runs")
    by_workbook = {row[0]: row for row in listed}
    assert by_workbook[EXAMPLE.name][1] == runs.SUCCEEDED
    assert by_workbook[EXAMPLE.name][3:5] == ["7", "7"]  # projects, reports
    assert web.run_url(EXAMPLE_NAME) in index.text
    assert 'http-equiv="refresh"' not in index.text  # nothing is running: no reloading

    page = published_client.get(web.run_url(EXAMPLE_NAME)).text
    assert 'id="status">成功<' in page
    header, rows = html_table(page, "summary")
    assert header[:2] == ["项目编号", "项目名称"] and "总得分" in header
    assert len(rows) == 7
    assert [row[1] for row in rows] == list(EXAMPLE_PROJECTS)
    assert rows[0][header.index("全年预算数")] == "5.00"  # two decimals, as in the reports
    assert "2.97" in [row[header.index("全年执行数")] for row in rows]
    assert rows[3][header.index("预算执行率")] == "85.62%"  # a fraction in the workbook, a percentage here
    assert '<svg id="chart"' in page
    chart = page[page.index('<svg id="chart"'):page.index("</svg>")]
    assert chart.count("<rect") == 2 + 2 * 7  # the legend, then score and rate per project
    for relative in listed_outputs(published.output_dir / EXAMPLE_NAME):
        if relative.endswith((".docx", ".zip")) or relative == SUMMARY_NAME:
            assert f'href="{web.file_url(EXAMPLE_NAME, relative)}"' in page, relative
    assert 'id="zip"' in page and 'id="summary-xlsx"' in page


def test_a_run_page_follows_its_summary_as_it_changes_and_survives_a_damaged_one(
        published_copy: Folders) -> None:
    summary = published_copy.output_dir / EXAMPLE_NAME / SUMMARY_NAME
    with TestClient(create_app(published_copy.settings())) as test_client:
        before = html_table(test_client.get(web.run_url(EXAMPLE_NAME)).text, "summary")[1]
        summary.write_bytes(b"not a workbook any more")
        damaged = test_client.get(web.run_url(EXAMPLE_NAME))

    assert len(before) == 7
    assert damaged.status_code == 200 and 'id="status">成功<' in damaged.text
    assert 'id="summary"' not in damaged.text and 'id="summary-xlsx"' in damaged.text


def test_an_invalid_run_shows_its_problems_by_sheet_and_excel_row(
        published_client: TestClient) -> None:
    _, listed = html_table(published_client.get("/").text, "runs")
    by_workbook = {row[0]: row for row in listed}
    assert by_workbook[f"{INVALID_NAME}.xlsx"][1] == runs.FAILED
    assert "1 个错误" in by_workbook[f"{INVALID_NAME}.xlsx"][5]

    page = published_client.get(web.run_url(INVALID_NAME)).text
    assert 'id="status">有错误<' in page
    header, rows = html_table(page, "problems")
    assert header == ["工作表", "单元格", "项目编号", "说明", "怎么改"]
    errors = [row for row in rows if not row[3].startswith("【警告】")]
    assert len(errors) == 1
    sheet, cell, project_id, message, fix = errors[0]
    assert (sheet, cell, project_id) == ("资金", f"E{excel_row(1)}", "P-002")  # 全年执行数(万元)
    assert "万元" in message and fix
    assert 'id="summary"' not in page and 'id="chart"' not in page and 'id="zip"' not in page
    assert 'id="problems-xlsx"' in page


def test_a_run_under_way_shows_as_processing_until_its_lock_is_released(published_copy: Folders) -> None:
    with TestClient(create_app(published_copy.settings())) as test_client:
        with output_lock(published_copy.output_dir / EXAMPLE_NAME):
            _, listed = html_table(test_client.get("/").text, "runs")
            page = test_client.get(web.run_url(EXAMPLE_NAME)).text
            assert {row[0]: row[1] for row in listed}[EXAMPLE.name] == runs.RUNNING
            assert 'id="status">处理中<' in page and "正在生成" in page
            assert 'http-equiv="refresh"' in page
        _, listed = html_table(test_client.get("/").text, "runs")
        assert {row[0]: row[1] for row in listed}[EXAMPLE.name] == runs.SUCCEEDED
        assert 'id="status">成功<' in test_client.get(web.run_url(EXAMPLE_NAME)).text


def test_a_refused_file_known_only_to_the_hot_folder_shows_its_reason(folders: Folders) -> None:
    data = workbook_bytes("坏了")
    (folders.input_dir / "坏.xlsx").write_bytes(data)
    reason = "文件已损坏……请用 Excel 打开后另存再提交。"
    state = hotfolder.with_run(HotfolderState(), "坏.xlsx", sha256(data), "refused", datetime.now(), reason)
    hotfolder.save_state(hotfolder.state_path(folders.output_dir), state)

    with TestClient(create_app(folders.settings())) as test_client:
        _, listed = html_table(test_client.get("/").text, "runs")
        page = test_client.get(web.run_url("坏")).text

    assert len(listed) == 1
    assert (listed[0][0], listed[0][1]) == ("坏.xlsx", runs.FAILED)
    assert reason in listed[0][5]
    assert 'id="status">有错误<' in page and reason in page


def test_a_workbook_changed_since_its_refusal_shows_as_waiting_again(folders: Folders) -> None:
    (folders.input_dir / "坏.xlsx").write_bytes(workbook_bytes("改好了"))
    state = hotfolder.with_run(HotfolderState(), "坏.xlsx", sha256(b"older content"), "refused",
                               datetime.now(), "文件已损坏")
    hotfolder.save_state(hotfolder.state_path(folders.output_dir), state)

    with TestClient(create_app(folders.settings())) as test_client:
        page = test_client.get(web.run_url("坏")).text

    assert 'id="status">处理中<' in page and "等待开始" in page


def test_a_waiting_workbook_says_when_no_process_watches_its_folder(folders: Folders) -> None:
    (folders.input_dir / "预算.xlsx").write_bytes(workbook_bytes("待处理"))

    with TestClient(create_app(folders.settings())) as test_client:
        unwatched = test_client.get(web.run_url("预算")).text
        with held_lock(folders.output_dir / hotfolder.WATCHER_LOCK_NAME):
            watched = test_client.get(web.run_url("预算")).text

    assert "目前没有 perfreport serve 或 perfreport web" in unwatched
    assert "等待开始" in watched and "目前没有" not in watched


# --- run detection, from the lock holder's record --------------------------------------------


def test_is_running_is_true_only_while_the_lock_is_held(tmp_path: Path) -> None:
    final = tmp_path / "output" / "预算"

    assert not is_running(final)  # no lock file at all
    with output_lock(final):
        assert is_running(final)
        assert is_running(final)  # looking does not take the lock from the run
    assert not is_running(final)


def test_a_left_over_lock_file_nobody_holds_is_not_a_run(tmp_path: Path) -> None:
    final = tmp_path / "预算"
    lock_path(final).write_bytes(b"")  # e.g. from a machine that lost power
    record_path(lock_path(final)).write_bytes(b"{\"pid\": ")  # cut short

    assert not is_running(final)
    assert runs.running_names(tmp_path) == []


def test_a_run_under_way_is_listed_by_its_folder_name(tmp_path: Path) -> None:
    with output_lock(tmp_path / "预算"), output_lock(tmp_path / "决算"):
        assert runs.running_names(tmp_path) == ["决算", "预算"]
    assert runs.running_names(tmp_path) == []


# --- one hot-folder watcher per output folder ------------------------------------------------


class RecordedRuns:
    """A run starter that only records what it was asked to run (the watcher's locking is under
    test here, not a run's result)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, workbook: Path, input_dir: Path, output_dir: Path,
                 profile: str | None = None, *, pdf: bool = False) -> tuple[str, str]:
        self.calls.append(workbook.name)
        return "success", ""


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_second_watcher_on_the_same_output_folder_gives_way(folders: Folders) -> None:
    stop = threading.Event()
    first, second = RecordedRuns(), RecordedRuns()
    watcher_lock = folders.output_dir / hotfolder.WATCHER_LOCK_NAME
    thread = threading.Thread(target=watcher.watch_folder, daemon=True,
                              args=(folders.input_dir, folders.output_dir, stop, 0.1),
                              kwargs={"start_run": first})
    thread.start()
    try:
        assert wait_until(watcher_lock.exists, 5)  # the lock file exists only while held
        (folders.input_dir / "新.xlsx").write_bytes(workbook_bytes("新"))

        started = time.monotonic()
        watcher.watch_folder(folders.input_dir, folders.output_dir, threading.Event(), 0.1,
                             start_run=second)
        assert time.monotonic() - started < 2  # returned at once, instead of watching too

        # The first watcher runs the dropped workbook once it has settled (2 s), and only once.
        assert wait_until(lambda: first.calls == ["新.xlsx"], hotfolder.DEFAULT_SETTLE_SECONDS + 10)
        time.sleep(1)
        assert first.calls == ["新.xlsx"] and second.calls == []
        state = hotfolder.load_state(hotfolder.state_path(folders.output_dir))
        assert state.processed["新.xlsx"].outcome == "success"
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert not watcher_lock.exists()  # released with the watcher


def test_the_watcher_records_why_a_file_is_refused_and_the_page_shows_it(folders: Folders) -> None:
    # A zip whose XML declares entities: refused before any run starts, with the reason kept for
    # the page (a deployment run would end COMPLETED without writing anything or saying why).
    hostile = io.BytesIO()
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("xl/workbook.xml", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>')
    (folders.input_dir / "实体.xlsx").write_bytes(hostile.getvalue())
    stop, recorded = threading.Event(), RecordedRuns()
    state_file = hotfolder.state_path(folders.output_dir)
    thread = threading.Thread(target=watcher.watch_folder, daemon=True,
                              args=(folders.input_dir, folders.output_dir, stop, 0.1),
                              kwargs={"start_run": recorded})
    thread.start()
    try:
        assert wait_until(state_file.exists, hotfolder.DEFAULT_SETTLE_SECONDS + 10)
    finally:
        stop.set()
        thread.join(timeout=10)

    processed = hotfolder.load_state(state_file).processed["实体.xlsx"]
    assert recorded.calls == []
    assert processed.outcome == Status.REFUSED and "DOCTYPE" in processed.message
    with TestClient(create_app(folders.settings())) as test_client:
        page = test_client.get(web.run_url("实体")).text
    assert 'id="status">有错误<' in page and "DOCTYPE" in page


def test_a_file_that_is_not_a_whole_workbook_yet_is_shown_as_waiting_for_its_copy(folders: Folders) -> None:
    (folders.input_dir / "复制中.xlsx").write_bytes(workbook_bytes("复制中")[:-40])  # no end record yet

    with TestClient(create_app(folders.settings())) as test_client:
        page = test_client.get(web.run_url("复制中")).text

    assert 'id="status">处理中<' in page and runs.INCOMPLETE in page


def test_the_app_watcher_gives_way_to_a_watcher_already_running(folders: Folders) -> None:
    """`web` beside `serve`: the page still works, and only the first watcher starts runs."""
    mine = RecordedRuns()
    # The lock as another process's watcher (`perfreport serve`) holds it.
    with held_lock(folders.output_dir / hotfolder.WATCHER_LOCK_NAME):
        settings = dataclasses.replace(folders.settings(start_run=mine, poll_seconds=0.1), watch=True)
        app = create_app(settings)
        with TestClient(app) as test_client:
            watcher: web.Watcher = app.state.watcher
            assert watcher.thread is not None
            watcher.thread.join(timeout=5)
            assert not watcher.thread.is_alive()  # gave way at once
            (folders.input_dir / "新.xlsx").write_bytes(workbook_bytes("新"))
            assert upload(test_client, "另一个.xlsx", workbook_bytes("另一个")).status_code == 303
            time.sleep(hotfolder.DEFAULT_SETTLE_SECONDS + 0.5)
    assert mine.calls == []


# --- `perfreport web` guards ---------------------------------------------------------------


def perfreport_web(tmp_path: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = cli_env()
    if token is not None:
        env["PERFREPORT_WEB_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "web", "--input-dir", str(tmp_path / "input"),
         "--output-dir", str(tmp_path / "output"), *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env, check=False)


def test_web_on_a_public_address_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    done = perfreport_web(tmp_path, "--host", "0.0.0.0", "--port", "1")

    assert done.returncode == 2
    assert "PERFREPORT_WEB_TOKEN" in done.stderr and "访问令牌" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_web_with_a_short_token_refuses_to_start(tmp_path: Path) -> None:
    done = perfreport_web(tmp_path, "--port", "1", token="short-token")

    assert done.returncode == 2
    assert "访问令牌太短" in done.stderr and "16" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_web_on_a_port_already_taken_exits_2_without_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = perfreport_web(tmp_path, "--port", str(port))

    assert done.returncode == 2, done.stdout + done.stderr
    assert f"无法在 127.0.0.1:{port} 上提供网页" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("localhost", True), ("LOCALHOST", True), ("::1", True),
    ("[::1]", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
    ("localhost.evil.example", False), ("example.com", False),
])
def test_only_loopback_addresses_may_go_without_a_token(host: str, loopback: bool) -> None:
    assert webguard.is_loopback(host) is loopback


# --- Host names and the public address --------------------------------------------------------


@pytest.mark.parametrize(("host", "allowed"), [
    ("127.0.0.1:8000", True), ("localhost:8000", True), ("LocalHost:8000", True), ("127.8.9.10:8000", True),
    ("[::1]:8000", True), ("127.0.0.1", False), ("localhost:8001", False), ("evil.example:8000", False),
    ("evil.example", False), ("localhost.evil.example:8000", False), ("evil@127.0.0.1:8000", False),
    ("127.0.0.1:8000/x", False), ("::1:8000", False), ("127.1:8000", False), ("", False), (None, False),
])
def test_without_a_token_only_loopback_names_with_the_listening_port_are_served(
        host: str | None, allowed: bool) -> None:
    assert webguard.allowed_host(WebSettings(port=8000), "http", host) is allowed


def test_the_port_may_be_left_out_only_when_it_is_the_schemes_default() -> None:
    assert webguard.allowed_host(WebSettings(port=80), "http", "localhost")
    assert webguard.allowed_host(WebSettings(port=80), "http", "127.0.0.1:80")
    assert not webguard.allowed_host(WebSettings(port=8000), "http", "localhost")


def test_with_a_token_and_no_allow_list_any_host_is_served_with_the_token(folders: Folders) -> None:
    settings = folders.settings(token=TOKEN, allowed_hosts=())
    with TestClient(create_app(settings), base_url="http://reports.example:8080") as test_client:
        without = test_client.get("/")
        with_token = test_client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})

    assert without.status_code == 401 and with_token.status_code == 200


def test_with_an_allow_list_other_hosts_are_refused_even_with_the_token(folders: Folders) -> None:
    (folders.input_dir / "预算.xlsx").write_bytes(workbook_bytes("预算"))
    settings = folders.settings(token=TOKEN, allowed_hosts=("reports.example",))
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(settings), base_url="http://reports.example") as test_client:
        listed = test_client.get("/", headers=bearer)
        other = test_client.get("/", headers={**bearer, "Host": "evil.example"})

    assert listed.status_code == 200 and "预算.xlsx" in listed.text
    assert other.status_code == 400 and "网址不对" in other.text and "预算" not in other.text


def test_behind_a_proxy_that_rewrites_host_an_upload_from_the_public_address_is_accepted(
        folders: Folders, example_bytes: bytes) -> None:
    """The proxy passes Host 127.0.0.1:8000 on; the browser's Origin is the public address."""
    settings = folders.settings(token=TOKEN, allowed_hosts=(), public_url="https://reports.example.gov.cn/")
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as test_client:
        accepted = upload(test_client, EXAMPLE.name, example_bytes, Origin="https://reports.example.gov.cn", **bearer)
        refused = upload(test_client, EXAMPLE.name, example_bytes, Origin="https://evil.example", **bearer)
        public_host = test_client.get("/", headers={**bearer, "Host": "reports.example.gov.cn"})
        other_host = test_client.get("/", headers={**bearer, "Host": "evil.example"})

    assert accepted.status_code == 303
    assert refused.status_code == 403
    assert public_host.status_code == 200 and other_host.status_code == 400


@pytest.mark.parametrize(("public_url", "origin"), [
    ("https://reports.example", "https://reports.example"), ("https://Reports.Example:443/", "https://reports.example"),
    ("http://10.0.0.5:8000", "http://10.0.0.5:8000"), ("ftp://reports.example", None), ("reports.example", None),
    ("https://", None), (None, None),
])
def test_the_public_address_is_reduced_to_the_origin_a_browser_sends(public_url: str | None, origin: str | None) -> None:
    assert webguard.public_origin(public_url) == origin


def test_web_refuses_a_public_url_it_cannot_use(tmp_path: Path) -> None:
    done = perfreport_web(tmp_path, "--port", "1", "--public-url", "https://reports.example/perfreport/")

    assert done.returncode == 2 and "对外网址无效" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


# --- the token redirect stays on this server -----------------------------------------------------


@pytest.mark.parametrize("path", ["//evil.example/", "/\\evil.example/", "///x", "/\\/evil.example/",
                                  "/%2F%2Fevil.example/", "/%5Cevil.example/", "/%2f/evil.example/"])
def test_the_token_redirect_never_leads_to_another_host(guarded: TestClient, path: str) -> None:
    answer = guarded.get(f"http://testserver{path}?token={TOKEN}", follow_redirects=False)

    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/") and location[1:2] not in ("/", "\\"), location
    assert urlsplit(urljoin("http://127.0.0.1:8000/", location)).netloc == "127.0.0.1:8000"


@pytest.mark.parametrize(("raw", "expected"), [
    (b"//evil.example/", "/evil.example/"), (b"/\\evil.example/", "/evil.example/"), (b"///x", "/x"),
    (b"/\\\t/evil.example/", "/evil.example/"), (b"http://evil.example/", "/http://evil.example/"),
    (b"/%2F%2Fevil.example/", "/%2F%2Fevil.example/"), (b"/runs/%E9%A2%84%E7%AE%97", "/runs/%E9%A2%84%E7%AE%97"),
])
def test_without_token_gives_a_path_of_this_server_whatever_the_request_path(raw: bytes, expected: str) -> None:
    request = Request({"type": "http", "method": "GET", "path": raw.decode("latin-1"), "raw_path": raw,
                       "query_string": b"token=x&same=1", "headers": []})

    assert web.without_token(request) == expected + "?same=1"


# --- security headers ----------------------------------------------------------------------------


def assert_security_headers(answer: httpx.Response) -> None:
    headers = answer.headers
    policy = {part.strip().split(" ", 1)[0]: part.strip() for part in headers["content-security-policy"].split(";")}
    assert policy["default-src"] == "default-src 'none'"
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert policy["form-action"] == "form-action 'self'"
    assert policy["base-uri"] == "base-uri 'none'"
    assert "unsafe-inline" not in headers["content-security-policy"] and "script-src" not in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"  # no-referrer would make the form's Origin "null"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"


def test_every_kind_of_answer_carries_the_security_headers(
        published_client: TestClient, published: Folders, example_bytes: bytes, tmp_path: Path) -> None:
    answers = {
        "index": published_client.get("/"),
        "run page": published_client.get(web.run_url(EXAMPLE_NAME)),
        "download": published_client.get(web.file_url(EXAMPLE_NAME, SUMMARY_NAME)),
        "not found": published_client.get(web.run_url("没有这个")),
        "cross-site": upload(published_client, "新.xlsx", b"x", Origin="http://evil.example"),
        "wrong host": published_client.get("/", headers={"Host": "evil.example"}),
    }
    (tmp_path / "input").mkdir()
    guarded_settings = WebSettings(input_dir=tmp_path / "input", output_dir=tmp_path / "output", watch=False,
                                   token=TOKEN, max_upload_bytes=LIMIT, allowed_hosts=TEST_HOSTS)
    with TestClient(create_app(guarded_settings)) as guarded_client:
        answers["no token"] = guarded_client.get("/")
        answers["token redirect"] = guarded_client.get(f"/?token={TOKEN}", follow_redirects=False)
        body, headers = multipart("大.xlsx", b"x" * (LIMIT + web.FORM_OVERHEAD + 1))
        answers["too large"] = guarded_client.post("/upload", content=body, headers=headers)

    assert [answer.status_code for answer in answers.values()] == [200, 200, 200, 404, 403, 400, 401, 303, 413]
    for kind, answer in answers.items():
        try:
            assert_security_headers(answer)
        except (AssertionError, KeyError) as exc:
            raise AssertionError(f"{kind}: {exc!r}") from None


def test_the_policy_allows_exactly_the_pages_own_style_block(published_client: TestClient) -> None:
    answer = published_client.get(web.run_url(EXAMPLE_NAME))
    page = answer.text
    styles = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    assert len(styles) == 1 and "style=" not in page and "<script" not in page
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()

    assert f"style-src 'sha256-{digest}';" in answer.headers["content-security-policy"]
    assert '<svg id="chart"' in page  # inline markup: needs no source in the policy


@pytest.mark.parametrize(("options", "secure"), [
    ({}, False), ({"secure_cookie": True}, True), ({"public_url": "https://reports.example"}, True),
    ({"public_url": "http://10.0.0.5:8000"}, False),
])
def test_the_token_cookie_is_secure_when_asked_or_behind_https(
        folders: Folders, options: dict[str, object], secure: bool) -> None:
    with TestClient(create_app(folders.settings(token=TOKEN, **options))) as test_client:
        answer = test_client.get(f"/?token={TOKEN}", follow_redirects=False)

    assert answer.status_code == 303
    assert ("; secure" in answer.headers["set-cookie"].lower()) is secure


# --- one name, many uploads; what an upload may be called; what uploads leave behind --------------


def test_the_page_of_a_replaced_upload_says_so_and_names_its_archived_copy(
        client: TestClient, folders: Folders) -> None:
    first, second = workbook_bytes("第一版"), workbook_bytes("第二版")
    first_page = upload(client, "预算.xlsx", first).headers["location"]
    second_page = upload(client, "预算.xlsx", second).headers["location"]

    replaced = client.get(first_page).text
    kept = [p.name for p in hotfolder.archive_root(folders.output_dir).iterdir()]
    assert len(kept) == 1 and (hotfolder.archive_root(folders.output_dir) / kept[0]).read_bytes() == first
    assert 'id="replaced"' in replaced and f"output/_archive/{kept[0]}" in replaced
    assert 'id="replaced"' not in client.get(second_page).text


def test_a_reserved_workbook_name_is_refused_with_the_reason(
        client: TestClient, folders: Folders, example_bytes: bytes) -> None:
    answer = upload(client, "_archive.xlsx", example_bytes)

    assert answer.status_code == 400 and "保留名称" in answer.text
    assert names_in(folders.input_dir) == [] and names_in(folders.output_dir) == []


def test_upload_parts_left_by_a_killed_server_are_removed_at_start_and_live_ones_kept(folders: Folders) -> None:
    stale = folders.input_dir / f"{uploads.UPLOAD_PART_PREFIX}{'0' * 32}{uploads.UPLOAD_PART_SUFFIX}"
    stale.write_bytes(b"half an upload")
    live = folders.input_dir / f"{uploads.UPLOAD_PART_PREFIX}{'1' * 32}{uploads.UPLOAD_PART_SUFFIX}"
    with live.open("wb") as writing:  # an upload another process is writing now
        assert took_lock(writing.fileno())
        with TestClient(create_app(folders.settings())):
            pass
        assert live.exists()
    assert not stale.exists()


def test_an_upload_holds_its_part_file_locked_while_writing_it(
        folders: Folders, example_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """What tells a live upload's part from a killed one's: while written, its lock is taken."""
    seen: list[bool] = []
    original = uploads.copy_hashed

    def copy_and_look(source: IO[bytes], target: IO[bytes]) -> str:
        digest = original(source, target)
        (part,) = folders.input_dir.glob(f"{uploads.UPLOAD_PART_PREFIX}*")
        seen.append(uploads.remove_stale_parts(folders.input_dir) == [] and part.exists())
        return digest

    monkeypatch.setattr(uploads, "copy_hashed", copy_and_look)
    saved = uploads.save_upload(UploadFile(io.BytesIO(example_bytes), filename="预算.xlsx"), "预算.xlsx",
                                folders.input_dir, folders.output_dir, WebSettings().max_upload_bytes)

    assert seen == [True] and saved.new and saved.path.read_bytes() == example_bytes


# --- what the run page reads -------------------------------------------------------------------


@pytest.mark.parametrize("table", ["summary", "problems"])
def test_a_table_replaced_by_a_link_is_neither_shown_nor_downloadable(
        published_copy: Folders, tmp_path: Path, table: str) -> None:
    name, relative = (EXAMPLE_NAME, SUMMARY_NAME) if table == "summary" else (INVALID_NAME, PROBLEMS_NAME)
    linked = published_copy.output_dir / name / relative
    elsewhere = tmp_path / "elsewhere.xlsx"  # a workbook outside the run folder, readable as a table
    shutil.copy2(linked, elsewhere)
    linked.unlink()
    linked.symlink_to(elsewhere)
    with refusing_client(published_copy.settings()) as test_client:
        page = test_client.get(web.run_url(name))
        download = test_client.get(web.file_url(name, relative))

    assert page.status_code == 200
    assert f'id="{table}"' not in page.text
    assert_not_served(download, elsewhere.read_bytes())


def test_the_pages_show_a_watcher_problem_as_a_red_banner() -> None:
    """The pages' side of the watcher's health (the app passes None until runs.py tells it)."""
    pages = Jinja2Templates(directory=str(web.PAGES)).env
    run = runs.RunView("预算", "预算.xlsx", runs.RUNNING, runs.WAITING, None)
    context = {"runs": [], "run": run, "RUNNING": runs.RUNNING, "SUCCEEDED": runs.SUCCEEDED, "FAILED": runs.FAILED,
               "refresh": 3, "max_upload_mb": 200, "run_url": web.run_url, "file_url": web.file_url, "zip": zip}
    banner = '<div class="notice error" role="alert" id="watcher-problem">自动处理暂停：输入文件夹不存在</div>'
    for template in ("index.html", "run.html"):
        assert banner in pages.get_template(template).render(context, watcher_problem="输入文件夹不存在")
        assert "watcher-problem" not in pages.get_template(template).render(context, watcher_problem=None)
