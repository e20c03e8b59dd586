"""`perfreport web`: the scoring-profile selector, from the upload form to the run it starts.

Driven in-process with starlette's TestClient on real folders, as tests/test_web.py does. The
page's own checks and the watcher's decisions use a recording run starter; one test runs the real
`perfreport run` child processes the page starts, on a 20 + 80 four-sheet workbook written here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from pipeline.config import profile_files
from pipeline.serve import hotfolder, profilechoice, runs, watcher, web
from pipeline.serve.web import create_app
from pipeline.write.names import SUMMARY_NAME
from tests import test_web
from tests.conftest import valid_sheets, workbook_bytes, write_workbook
from tests.summarytable import summary_records
from tests.test_web import Folders

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HUBEI = "湖北"
NATIONAL = "财预〔2020〕10号"
RUN_SECONDS = 300  # one `perfreport run` child takes 15-20 s here; the machine is shared
# The 分值 of valid_sheets()'s five indicators changed to add up to 80 for each project (20 + 80).
EIGHTY_POINTS = (15, 35, 30, 50, 30)


# The page's folders and in-process client, shared with tests/test_web.py (fixtures by assignment).
folders = test_web.folders
client = test_web.client


def upload(client: TestClient, filename: str, data: bytes, profile: str | None = None) -> httpx.Response:
    """POST one file as the page's form does, with the selector's value when given."""
    fields = {} if profile is None else {profilechoice.PROFILE_FIELD: profile}
    return client.post("/upload", files={web.UPLOAD_FIELD: (filename, data, XLSX_TYPE)}, data=fields,
                       follow_redirects=False)


@pytest.fixture(scope="module")
def eighty_points(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The conftest workbook with its indicators worth 80 points per project (a 湖北 table)."""
    sheets = valid_sheets()
    for row, points in zip(sheets["绩效指标"], EIGHTY_POINTS, strict=True):
        row["分值"] = points
    return write_workbook(tmp_path_factory.mktemp("eighty") / "鄂.xlsx", sheets).read_bytes()


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class SelectReader(HTMLParser):
    """The <select> of a page: its id, the label pointing at it, and its options (value, text, selected)."""

    def __init__(self) -> None:
        super().__init__()
        self.select_id: str | None = None
        self.label_for: list[str] = []
        self.options: list[tuple[str, str, bool]] = []
        self.text: list[str] | None = None
        self.attrs: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "select":
            self.select_id = found.get("id")
        elif tag == "label" and found.get("for"):
            self.label_for.append(str(found["for"]))
        elif tag == "option":
            self.text, self.attrs = [], found

    def handle_endtag(self, tag: str) -> None:
        if tag == "option" and self.text is not None:
            self.options.append((str(self.attrs.get("value")), "".join(self.text).strip(), "selected" in self.attrs))
            self.text = None

    def handle_data(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)


def select_of(page: str) -> SelectReader:
    reader = SelectReader()
    reader.feed(page)
    return reader


class RecordedRuns:
    """A run starter that records each workbook and the profile it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, workbook: Path, input_dir: Path, output_dir: Path,
                 profile: str | None = None, *, pdf: bool = False) -> tuple[str, str]:
        self.calls.append((workbook.name, profile))
        return "success", ""


def run_watcher_once(folders: Folders, name: str, start_run: RecordedRuns) -> None:
    """What the watcher does for a settled workbook: run it if its content or chosen profile is new."""
    path = folders.input_dir / name
    watcher.run_if_needed(path, hashlib.sha256(path.read_bytes()).hexdigest(), folders.input_dir,
                          folders.output_dir, hotfolder.state_path(folders.output_dir), start_run,
                          watcher.OnceLogger(logging.getLogger("test")))


# --- the selector ------------------------------------------------------------------------------


def test_the_upload_form_offers_every_shipped_profile_by_name_after_the_automatic_choice(
        client: TestClient) -> None:
    page = client.get("/").text
    form = page[page.index('<form class="upload"'):page.index("</form>")]
    select = select_of(form)

    assert select.select_id == "profile" and "profile" in select.label_for  # labelled for screen readers
    assert 'name="profile"' in form
    values = [value for value, _, _ in select.options]
    assert values[0] == "" and select.options[0][1] == profilechoice.AUTOMATIC_LABEL and select.options[0][2]
    assert sorted(values[1:]) == sorted(profile_files())
    texts = {value: text for value, text, _ in select.options}
    assert texts["湖北"] == "湖北（预算执行20分＋绩效指标80分）"
    assert texts["财预2020-10号"] == f"{NATIONAL}（预算执行10分＋绩效指标90分）"
    assert values[1] == "财预2020-10号"  # the national profile first
    assert "<script" not in page  # a plain form: works without JavaScript


def test_a_profile_file_that_cannot_be_read_is_left_out_of_the_offer(tmp_path: Path) -> None:
    (tmp_path / "湖北.toml").write_text(profile_files()[HUBEI].read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "坏的.toml").write_text("name = \n", encoding="utf-8")

    options = profilechoice.shipped_options(tmp_path)

    assert [option.value for option in options] == [HUBEI]


# --- values the page did not offer ----------------------------------------------------------------


@pytest.mark.parametrize("value", ["不存在", "湖北.toml", "../profiles/湖北", "/etc/passwd", "--output-dir=/tmp",
                                   "湖北 ", "x" * 5000])
def test_a_profile_the_page_did_not_offer_is_refused_with_400_and_nothing_is_saved(
        client: TestClient, folders: Folders, value: str, eighty_points: bytes) -> None:
    answer = upload(client, "鄂.xlsx", eighty_points, value)

    assert answer.status_code == 400
    assert "没有名为「" in answer.text and "的评分规则，未保存上传的文件" in answer.text
    assert "x" * 100 not in answer.text  # a long value is quoted shortened
    assert names_in(folders.input_dir) == [] and names_in(folders.output_dir) == []


def test_a_profile_sent_as_a_file_is_refused(client: TestClient, folders: Folders) -> None:
    answer = client.post("/upload", files={profilechoice.PROFILE_FIELD: ("湖北", b"name = 'x'", "text/plain")},
                         follow_redirects=False)

    assert answer.status_code == 400 and "评分规则" in answer.text
    assert names_in(folders.input_dir) == [] and names_in(folders.output_dir) == []


def test_after_a_refused_file_the_form_keeps_the_chosen_profile(client: TestClient) -> None:
    answer = upload(client, "鄂.csv", b"a,b\n", HUBEI)

    assert answer.status_code == 415
    selected = [value for value, _, chosen in select_of(answer.text).options if chosen]
    assert selected == [HUBEI]


# --- the choice travels with the upload to the run ---------------------------------------------


def test_the_chosen_profile_reaches_the_run_and_is_shown_while_the_upload_waits(
        client: TestClient, folders: Folders, eighty_points: bytes) -> None:
    data = eighty_points

    answer = upload(client, "鄂.xlsx", data, HUBEI)

    assert answer.status_code == 303
    page = client.get(answer.headers["location"]).text
    assert 'id="status">处理中<' in page and f"评分规则：{HUBEI}" in page
    recorded = RecordedRuns()
    run_watcher_once(folders, "鄂.xlsx", recorded)
    run_watcher_once(folders, "鄂.xlsx", recorded)  # the same content and profile: once only
    assert recorded.calls == [("鄂.xlsx", HUBEI)]
    state = hotfolder.load_state(hotfolder.state_path(folders.output_dir))
    assert state.processed["鄂.xlsx"].profile == HUBEI


def test_the_same_bytes_uploaded_with_another_profile_run_again(
        client: TestClient, folders: Folders, eighty_points: bytes) -> None:
    data, recorded = eighty_points, RecordedRuns()
    assert upload(client, "鄂.xlsx", data).status_code == 303
    run_watcher_once(folders, "鄂.xlsx", recorded)

    again = upload(client, "鄂.xlsx", data, HUBEI)
    run_watcher_once(folders, "鄂.xlsx", recorded)
    same = upload(client, "鄂.xlsx", data, HUBEI)
    run_watcher_once(folders, "鄂.xlsx", recorded)

    assert "same" not in again.headers["location"]  # not "沿用上次的结果": it will run again
    assert "same=1" in same.headers["location"]
    assert recorded.calls == [("鄂.xlsx", None), ("鄂.xlsx", HUBEI)]
    assert not hotfolder.archive_root(folders.output_dir).exists()  # the bytes were never replaced


def test_a_workbook_copied_over_an_upload_by_hand_runs_without_its_profile(
        client: TestClient, folders: Folders, eighty_points: bytes) -> None:
    assert upload(client, "鄂.xlsx", eighty_points, HUBEI).status_code == 303
    (folders.input_dir / "鄂.xlsx").write_bytes(workbook_bytes("另一份"))  # the choice was for other content
    recorded = RecordedRuns()

    run_watcher_once(folders, "鄂.xlsx", recorded)

    assert recorded.calls == [("鄂.xlsx", None)]


def test_a_recorded_profile_no_longer_shipped_never_reaches_a_command_line(folders: Folders) -> None:
    data = workbook_bytes("预算")
    (folders.input_dir / "预算.xlsx").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    profilechoice.save_choice(folders.output_dir, profilechoice.ChoiceRecord("预算.xlsx", digest, "/etc/passwd"))

    assert profilechoice.uploaded_choice(folders.output_dir, "预算.xlsx", digest) is None


def test_the_child_run_is_given_the_profile_on_its_command_line(
        folders: Folders, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_run(command: list[str], **_: object) -> watcher.subprocess.CompletedProcess[str]:
        seen.append(command)
        return watcher.subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(watcher.subprocess, "run", fake_run)
    workbook = folders.input_dir / "鄂.xlsx"
    watcher.run_in_child_process(workbook, folders.input_dir, folders.output_dir, HUBEI)
    watcher.run_in_child_process(workbook, folders.input_dir, folders.output_dir, None)

    assert seen[0][-2:] == ["--profile", HUBEI]
    assert "--profile" not in seen[1]


# --- the real runs the page starts --------------------------------------------------------------


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return condition()


def finished_page(test_client: TestClient, location: str) -> str:
    """The run page once its run has finished (not 处理中)."""
    pages: list[str] = []

    def finished() -> bool:
        pages.append(test_client.get(location).text)
        return 'id="status">处理中<' not in pages[-1]

    assert wait_for(finished, RUN_SECONDS), pages[-1][-2000:]
    return pages[-1]


def test_a_twenty_plus_eighty_workbook_is_refused_without_a_profile_and_scored_with_hubei(
        folders: Folders, eighty_points: bytes) -> None:
    data = eighty_points
    settings = dataclasses.replace(folders.settings(poll_seconds=0.2), watch=True)
    with TestClient(create_app(settings)) as test_client:
        plain = upload(test_client, "鄂.xlsx", data)
        refused = finished_page(test_client, plain.headers["location"])

        chosen = upload(test_client, "鄂.xlsx", data, HUBEI)
        waiting = test_client.get(chosen.headers["location"]).text
        scored = finished_page(test_client, chosen.headers["location"])
        index = test_client.get("/").text

    # Without a profile: the national one, whose 90 points the indicators do not add up to.
    assert 'id="status">有错误<' in refused
    assert f"按「{NATIONAL}」评分规则应为 90" in refused
    assert f"评分规则：{NATIONAL}" in refused
    # The same bytes with 湖北 chosen: waiting again (not the refusal above), then reports.
    assert "same" not in chosen.headers["location"] and 'id="status">处理中<' in waiting
    assert 'id="status">成功<' in scored and f"评分规则：{HUBEI}" in scored
    assert 'id="zip"' in scored and "共 2 个项目，生成 2 份报告" in scored
    manifest = runs.read_manifest(folders.output_dir / "鄂")
    assert manifest is not None and manifest["profile"] == HUBEI
    assert [row["评分规则"] for row in summary_records(folders.output_dir / "鄂" / SUMMARY_NAME)] == [HUBEI, HUBEI]
    assert f"<td>{HUBEI}</td>" in index[index.index('id="runs"'):]  # the listing names it too
