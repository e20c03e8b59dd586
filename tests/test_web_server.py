"""`perfreport web` as served: the real command in a child process on a loopback port.

What only the real server shows: which Host names it answers, how it treats clients that send
half a request or open too many connections, how much it logs under such a flood, and many
uploads of one name at once through uvicorn's thread pool. One server for the whole module,
started as an administrator would (`--no-watch`: nothing here needs a run), with short time
limits so waiting for them stays cheap.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import resource
import select
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from pipeline.serve import hotfolder
from tests.conftest import workbook_bytes
from tests.processes import free_port, start_web, stop_group, wait_for_port

HEAD_TIMEOUT, BODY_TIMEOUT = 2.0, 3.0
MARGIN = 3.0  # seconds a loaded 2-core machine may add to a timeout
MAX_CONNECTIONS = 80
LOW_SOFT_LIMIT = 256  # the open-files limit the server is started with, below its hard limit
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOUNDARY = "perfreport-server-test-4b1d"


@dataclass(frozen=True)
class Server:
    port: int
    input_dir: Path
    output_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def lower_open_files_limit() -> None:
    """In the child before exec: a soft limit below the hard one, as many systems start services."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(LOW_SOFT_LIMIT, hard), hard))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("served")
    input_dir, output_dir, log = root / "input", root / "output", root / "server.log"
    input_dir.mkdir()
    (input_dir / "预算.xlsx").write_bytes(workbook_bytes("预算"))  # so a listing would name it
    port = free_port()
    with log.open("wb") as output:
        process = start_web(input_dir, output_dir, port, "--no-watch", "--max-connections", str(MAX_CONNECTIONS),
                            "--head-timeout", str(HEAD_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
                            cwd=root, stdout=output, preexec_fn=lower_open_files_limit)
    try:
        wait_for_port(port, process, 60)
        yield Server(port, input_dir, output_dir, log, process)
    finally:
        stop_group(process)


def get(server: Server, path: str = "/", host: str | None = None) -> tuple[int, str]:
    """GET `path` with the Host header `host` (the server's own address by default)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", path, headers={"Host": host or server.host})
        answer = connection.getresponse()
        return answer.status, answer.read().decode("utf-8", "replace")
    finally:
        connection.close()


def closed_within(sockets: list[socket.socket], seconds: float) -> list[float]:
    """Read each socket until the server closes it; the seconds each took. Fails at `seconds`."""
    started = time.monotonic()
    waiting = {sock: 0.0 for sock in sockets}
    closed: dict[socket.socket, float] = {}
    while waiting:
        left = started + seconds - time.monotonic()
        assert left > 0, f"{len(waiting)} of {len(sockets)} connections still open after {seconds} s"
        readable, _, _ = select.select(list(waiting), [], [], left)
        for sock in readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                closed[sock] = time.monotonic() - started
                del waiting[sock]
    return [closed[sock] for sock in sockets]


def connect(server: Server, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    if data:
        sock.sendall(data)
    return sock


# --- Host names -----------------------------------------------------------------------------


def test_another_host_name_is_refused_while_loopback_names_with_the_port_are_served(server: Server) -> None:
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 sends its own
    name as Host. It must get neither the listing nor any page of this server."""
    refused = {host: get(server, "/", host) for host in (f"evil.example:{server.port}", "evil.example",
                                                         f"127.0.0.1.evil.example:{server.port}",
                                                         f"evil@127.0.0.1:{server.port}", "127.0.0.1")}
    served = {host: get(server, "/", host) for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}",
                                                        f"LOCALHOST:{server.port}", f"127.8.9.10:{server.port}")}

    for host, (status, text) in refused.items():
        assert status == 400, host
        assert "网址不对" in text and "预算" not in text and 'id="runs"' not in text, host
    for host, (status, text) in served.items():
        assert status == 200, host
        assert "预算.xlsx" in text, host
    # Not even a run page or a download is reached under another name.
    assert get(server, "/runs/%E9%A2%84%E7%AE%97", f"evil.example:{server.port}")[0] == 400


# --- slow clients, too many clients, and the log ----------------------------------------------


def test_half_sent_requests_are_closed_within_the_timeouts_and_the_page_still_answers(server: Server) -> None:
    head = f"GET / HTTP/1.1\r\nHost: {server.host}\r\nUser-Agent: slow".encode()
    body_head = (f"POST /upload HTTP/1.1\r\nHost: {server.host}\r\n"
                 f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 100000\r\n\r\n"
                 f"--{BOUNDARY}\r\n").encode()
    half_heads = [connect(server, head) for _ in range(50)]
    silent = [connect(server) for _ in range(5)]
    half_bodies = [connect(server, body_head) for _ in range(10)]
    try:
        times = closed_within(half_heads + silent + half_bodies, BODY_TIMEOUT + MARGIN)
    finally:
        for sock in half_heads + silent + half_bodies:
            sock.close()

    head_times, body_times = times[:len(half_heads) + len(silent)], times[len(half_heads) + len(silent):]
    assert min(head_times) >= HEAD_TIMEOUT - 0.5 and max(head_times) <= HEAD_TIMEOUT + MARGIN
    assert min(body_times) >= BODY_TIMEOUT - 0.5  # the body's own limit, not the head's
    status, text = get(server)
    assert status == 200 and "预算.xlsx" in text


def test_a_head_trickled_in_byte_by_byte_is_closed_at_its_deadline(server: Server) -> None:
    """Slowloris: each byte would restart a timer that only watches for silence."""
    sock = connect(server)
    started = time.monotonic()
    try:
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for byte in f"GET / HTTP/1.1\r\nHost: {server.host}\r\nX-Slow: ".encode() + b"a" * 1000:
                sock.send(bytes([byte]))
                time.sleep(0.2)
                assert time.monotonic() - started < HEAD_TIMEOUT + MARGIN, "still open"
    finally:
        sock.close()


def test_a_request_that_times_out_is_told_408(server: Server) -> None:
    sock = connect(server, f"GET / HTTP/1.1\r\nHost: {server.host}\r\n".encode())
    try:
        sock.settimeout(HEAD_TIMEOUT + MARGIN)
        answer = sock.recv(4096)
    finally:
        sock.close()

    assert answer.startswith(b"HTTP/1.1 408 ")


def test_connections_beyond_the_limit_are_refused_at_once_and_service_resumes(server: Server) -> None:
    held = [connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)  # all accepted by the server
        extra = connect(server)
        extra.settimeout(HEAD_TIMEOUT)  # refused at once, not closed by the head timeout
        try:
            answer = extra.recv(4096)
        finally:
            extra.close()
    finally:
        for sock in held:
            sock.close()

    assert answer.startswith(b"HTTP/1.1 503 ")
    deadline = time.monotonic() + 5
    while get(server)[0] != 200:  # the closed connections are counted out as the server sees them
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_flood_of_bad_requests_writes_a_bounded_log(server: Server) -> None:
    before = server.log.stat().st_size
    for _ in range(1500):
        sock = connect(server, b"NOT HTTP AT ALL\r\n\r\n")
        sock.settimeout(10)
        while sock.recv(4096):  # uvicorn answers 400 and closes; each logs a warning
            pass
        sock.close()
    time.sleep(0.5)
    grown = server.log.read_bytes()[before:].decode("utf-8", "replace")

    assert "Invalid HTTP request received." in grown  # logged, then limited
    assert grown.count("\n") <= 30, grown[:3000]
    assert get(server)[0] == 200


def test_the_server_raises_its_open_files_limit_to_the_hard_limit(server: Server) -> None:
    limits = Path(f"/proc/{server.process.pid}/limits").read_text()
    soft, hard = re.search(r"Max open files\s+(\S+)\s+(\S+)", limits).groups()  # type: ignore[union-attr]

    assert int(soft) > LOW_SOFT_LIMIT and soft == hard


def test_the_half_sent_bodies_left_no_traceback_in_the_log(server: Server) -> None:
    """A body cut off by the timeout ends the upload quietly: the client is gone, nothing failed."""
    sock = connect(server, (f"POST /upload HTTP/1.1\r\nHost: {server.host}\r\n"
                            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                            f"Content-Length: 5000\r\n\r\n--{BOUNDARY}\r\n").encode())
    try:
        closed_within([sock], BODY_TIMEOUT + MARGIN)
    finally:
        sock.close()
    time.sleep(0.3)

    assert "Traceback" not in server.log.read_text(encoding="utf-8", errors="replace")


# --- many uploads of one name at once ---------------------------------------------------------


def multipart(filename: str, data: bytes) -> bytes:
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="workbook"; filename="{filename}"\r\n'
            f"Content-Type: {XLSX_TYPE}\r\n\r\n").encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def post_upload(server: Server, filename: str, data: bytes) -> tuple[int, str]:
    """Upload as the page's form does; (status, Location)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        connection.request("POST", "/upload", body=multipart(filename, data), headers={
            "Host": server.host, "Origin": f"http://{server.host}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        answer = connection.getresponse()
        answer.read()
        return answer.status, answer.getheader("location") or ""
    finally:
        connection.close()


def test_twenty_uploads_of_one_name_at_once_each_end_as_the_input_or_an_archived_copy(server: Server) -> None:
    contents = [workbook_bytes(f"同名第{i}版") for i in range(20)]
    digests = [hashlib.sha256(data).hexdigest() for data in contents]
    assert len(set(digests)) == 20
    answers: list[tuple[int, str] | None] = [None] * 20
    go = threading.Barrier(20)

    def send(i: int) -> None:
        go.wait()
        answers[i] = post_upload(server, "同名.xlsx", contents[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert all(answer is not None and answer[0] == 303 for answer in answers), answers
    current = hashlib.sha256((server.input_dir / "同名.xlsx").read_bytes()).hexdigest()
    kept = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name
            for p in hotfolder.archive_root(server.output_dir).glob("同名-输入-*.xlsx")}
    assert [d for d in digests if d != current and d not in kept] == []
    assert len(kept) == 19  # every replaced upload once, nothing else
    assert [p.name for p in server.input_dir.iterdir() if p.name.startswith(".")] == []

    # Each upload's page: the last one shows its own workbook waiting; every other one says a
    # later upload replaced it and names its copy in the archive.
    for digest, answer in zip(digests, answers, strict=True):
        assert answer is not None
        location = answer[1]
        assert parse_qs(urlsplit(location).query)["upload"] == [digest[:16]]
        status, page = get(server, location)
        assert status == 200
        if digest == current:
            assert 'id="replaced"' not in page and "等待开始" in page
        else:
            assert 'id="replaced"' in page and "已被之后上传的同名工作簿替换" in page
            assert f"output/_archive/{kept[digest]}" in page


# --- the scoring-profile selector ----------------------------------------------------------------


def test_the_served_page_offers_the_profiles_and_refuses_one_it_did_not_offer(server: Server) -> None:
    status, page = get(server)
    body = multipart("鄂.xlsx", workbook_bytes("鄂")).removesuffix(f"--{BOUNDARY}--\r\n".encode()) + (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="profile"\r\n\r\n../../etc/passwd\r\n'
        f"--{BOUNDARY}--\r\n").encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        connection.request("POST", "/upload", body=body, headers={
            "Host": server.host, "Origin": f"http://{server.host}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        answer = connection.getresponse()
        refused = answer.status, answer.read().decode("utf-8")
    finally:
        connection.close()

    assert status == 200 and '<select id="profile" name="profile"' in page and '<label for="profile">' in page
    assert '<option value="湖北">湖北（预算执行20分＋绩效指标80分）</option>' in page
    assert refused[0] == 400 and "没有名为「../../etc/passwd」的评分规则" in refused[1]
    assert not (server.input_dir / "鄂.xlsx").exists()
