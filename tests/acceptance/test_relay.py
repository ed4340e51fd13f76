"""``hookwise relay serve`` and ``hookwise relay connect`` as real processes: signatures
verify through the relay, requests arrive byte for byte, a stopped client or a killed
relay loses and repeats nothing, and a wrong token gets nothing."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Process, Shell

pytestmark = pytest.mark.slow

TIMEOUT = 30.0
STRIPE_SECRET = "whsec_relay_test_stripe_secret_0123456789"
GITHUB_SECRET = "relay-test-github-secret"

CONFIG = """\
[store]
url = "sqlite:///hookwise.db"

[sources.stripe]
provider = "stripe"
secrets = ["env:STRIPE_SECRET"]

[sources.github]
provider = "github"
secrets = ["env:GITHUB_SECRET"]
"""


def port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        number: int = sock.getsockname()[1]
        return number


def eventually(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {value!r})")
        time.sleep(0.1)


# -- a local receiver that records exactly what reached it --------------------------------


@dataclass
class Received:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Echo:
    """Records every request (method, raw target, header lines in order with their case,
    body); answers with the next status of ``statuses`` (200 once they run out)."""

    port: int
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def record(self, handler: BaseHTTPRequestHandler) -> int:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        with self.lock:
            self.received.append(
                Received(handler.command, handler.path, list(handler.headers.items()), body)
            )
            return self.statuses.pop(0) if self.statuses else 200

    def numbers(self) -> list[str]:
        with self.lock:
            return [dict(r.headers).get("X-N", "") for r in self.received]


@pytest.fixture
def echo() -> Iterator[Echo]:
    recorder = Echo(port())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self) -> None:
            status = recorder.record(self)
            body = json.dumps({"echo": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", recorder.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield recorder
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# -- the relay's processes ------------------------------------------------------------------


@dataclass
class Relay:
    shell: Shell
    running: list[Process]
    port: int
    process: Process | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *args: str) -> Relay:
        self.process = self.shell.start(
            "relay", "serve", "--port", str(self.port), "--data", "relay.db", *args
        )
        self.running.append(self.process)
        self.process.wait_for_http(f"{self.base}/healthz")
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; only what was committed survives."""
        assert self.process is not None
        self.process.stop()

    def channel(self) -> dict[str, str]:
        created = self.shell("relay", "channel", "create", "--server", self.base, "--json")
        assert created.code == 0, created
        channel: dict[str, str] = created.json()
        assert channel["url"] == f"{self.base}/c/{channel['id']}"
        return channel

    def connect(self, channel: dict[str, str], to: str, *args: str) -> Process:
        process = self.shell.start(
            "relay", "connect", channel["url"], "--to", to, "--heartbeat", "1", "--json", *args,
            env={"HOOKWISE_RELAY_TOKEN": channel["token"]},
        )  # fmt: skip
        self.running.append(process)
        process.wait_for_output("connected to")
        return process

    def info(self, channel: dict[str, str]) -> dict[str, Any]:
        answer = httpx.get(
            f"{self.base}/channels/{channel['id']}",
            headers={"authorization": f"Bearer {channel['token']}"},
        )
        assert answer.status_code == 200, answer.text
        document: dict[str, Any] = answer.json()
        return document


@pytest.fixture
def relay(hookwise: Shell, running: list[Process]) -> Relay:
    return Relay(hookwise, running, port())


def deliveries(process: Process) -> list[dict[str, Any]]:
    return [json.loads(line) for line in process.stdout.splitlines() if line.startswith("{")]


def post(url: str, n: int) -> dict[str, Any]:
    answer = httpx.post(url, content=json.dumps({"n": n}).encode(), headers={"X-N": str(n)})
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


# -- the tests --------------------------------------------------------------------------------


def test_signed_events_from_two_sources_verify_through_one_channel(
    hookwise: Shell, running: list[Process], relay: Relay, project: Path
) -> None:
    (project / "hookwise.toml").write_text(CONFIG)
    hookwise.env.update(STRIPE_SECRET=STRIPE_SECRET, GITHUB_SECRET=GITHUB_SECRET)
    local_port = port()
    receiver = hookwise.start("serve", "--port", str(local_port), "--no-worker")
    running.append(receiver)
    receiver.wait_for_http(f"http://127.0.0.1:{local_port}/healthz")
    relay.start("--answer-wait", "10")  # senders get the receiver's own answer back
    channel = relay.channel()
    client = relay.connect(channel, f"http://127.0.0.1:{local_port}")

    stripe = hookwise("send", "stripe", f"{channel['url']}/hooks/stripe", "--secret",
                      STRIPE_SECRET, "--event", "invoice.paid", "--json")  # fmt: skip
    assert stripe.code == 0, stripe
    github = hookwise("send", "github", f"{channel['url']}/hooks/github", "--secret",
                      GITHUB_SECRET, "--json")  # fmt: skip
    assert github.code == 0, github
    forged = hookwise("send", "stripe", f"{channel['url']}/hooks/stripe", "--secret",
                      "whsec_not_the_secret", "--json")  # fmt: skip
    sent = [stripe.json()["requests"][0], github.json()["requests"][0]]

    def stored() -> list[dict[str, Any]] | None:
        listed = hookwise("events", "list", "--json")
        assert listed.code == 0, listed
        events: list[dict[str, Any]] = listed.json()
        return events if len(events) == 2 else None

    events = eventually(stored, "both events stored by the local receiver")
    answers = [json.loads(s["response"]) for s in sent]
    assert {(e["source"], e["id"]) for e in events} == {
        ("stripe", answers[0]["id"]),
        ("github", answers[1]["id"]),
    }
    assert answers[1]["id"] == sent[1]["delivery_id"]  # GitHub's X-GitHub-Delivery
    lines = eventually(lambda: len(deliveries(client)) >= 3 and deliveries(client), "3 lines")
    assert [(d["seq"], d["target"], d["status"]) for d in lines] == [
        (1, "/hooks/stripe", 200),
        (2, "/hooks/github", 200),
        (3, "/hooks/stripe", 401),  # the forged one: refused locally, a final answer
    ]
    assert all(d["acked"] for d in lines)
    assert [a["status"] for a in answers] == ["accepted", "accepted"]
    assert forged.code == 1, forged
    assert forged.json()["requests"][0]["status"] == 401
    assert relay.info(channel)["cursor"] == 3
    assert len(stored() or []) == 2


def test_a_request_arrives_byte_for_byte(relay: Relay, echo: Echo) -> None:
    relay.start("--answer-wait", "10")
    channel = relay.channel()
    relay.connect(channel, echo.url)
    target = f"/c/{channel['id']}/hooks/raw%2Fpath/x?b=2&a=%20&a=%E9"
    body = bytes(range(256)) * 3
    head = [
        ("Host", f"127.0.0.1:{relay.port}"),
        ("User-Agent", "provider/1.0"),
        ("X-CaSe-Header", "Value  with  spaces"),
        ("x-dup", "one"),
        ("X-Dup", "two"),
        ("Content-Type", "application/octet-stream"),
        ("X-Latin", "caf\xe9"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
    ]
    request = f"PATCH {target} HTTP/1.1\r\n".encode()
    request += b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in head) + b"\r\n" + body
    answer = _raw_exchange(relay.port, request)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]

    chunked = (
        f"POST /c/{channel['id']}/hooks/chunked HTTP/1.1\r\nHost: relay\r\n"
        "Transfer-Encoding: chunked\r\nX-Sig: s\r\nConnection: close\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    ).encode()
    assert _raw_exchange(relay.port, chunked).startswith(b"HTTP/1.1 200")

    eventually(lambda: len(echo.received) == 2, "both requests delivered")
    first, second = echo.received
    assert first.method == "PATCH"
    assert first.target == "/hooks/raw%2Fpath/x?b=2&a=%20&a=%E9"
    assert first.body == body
    expected = [("Host", f"127.0.0.1:{echo.port}")] + [
        (name, value) for name, value in head if name not in ("Host", "Connection")
    ]
    assert first.headers == expected
    assert (second.method, second.target, second.body) == ("POST", "/hooks/chunked", b"hello world")
    assert second.headers == [
        ("Host", f"127.0.0.1:{echo.port}"),
        ("X-Sig", "s"),
        ("Content-Length", "11"),
    ]
    # The sender waited for the local answer and got it (handshakes work through the relay).
    assert answer.endswith(b'{"echo": 200}')
    assert b"x-hookwise-relay-seq: 1\r\n" in answer


def _raw_exchange(port_number: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port_number), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_stopped_client_gets_everything_once_when_it_comes_back(relay: Relay, echo: Echo) -> None:
    relay.start()
    channel = relay.channel()
    url = f"{channel['url']}/hooks/demo"
    client = relay.connect(channel, echo.url)
    post(url, 0)
    eventually(lambda: echo.numbers() == ["0"], "the first event delivered")
    eventually(lambda: relay.info(channel)["cursor"] == 1, "the first event acknowledged")
    client.stop()  # SIGKILL: the laptop's lid closes

    answers = [post(url, n) for n in range(1, 21)]
    assert [a["status"] for a in answers] == ["relayed"] * 20
    assert [a["seq"] for a in answers] == list(range(2, 22))
    assert echo.numbers() == ["0"]
    assert relay.info(channel)["pending"] == 20

    back = relay.connect(channel, echo.url)
    expected = [str(n) for n in range(21)]
    eventually(lambda: echo.numbers() == expected, "all 20 delivered")
    time.sleep(1.5)  # a duplicate would show up now
    assert echo.numbers() == expected
    assert [d["seq"] for d in deliveries(back)] == list(range(2, 22))
    assert relay.info(channel)["cursor"] == 21
    assert relay.info(channel)["pending"] == 0
    assert back.terminate() == 0
    assert "stopped after seq 21" in back.stderr
    assert relay.process is not None and relay.process.terminate() == 0
    assert "Traceback" not in relay.process.stderr + back.stderr


def test_a_killed_relay_loses_and_repeats_nothing(relay: Relay, echo: Echo) -> None:
    relay.start()
    channel = relay.channel()
    url = f"{channel['url']}/hooks/demo"

    for n in range(10):  # stored while no client is connected: pending
        post(url, n)
    relay.kill()
    relay.start()
    client = relay.connect(channel, echo.url)
    first = [str(n) for n in range(10)]
    eventually(lambda: echo.numbers() == first, "the 10 pending events delivered")

    relay.kill()  # now with the client connected: it must reconnect and resume
    relay.start()
    for n in range(10, 15):
        post(url, n)
    everything = [str(n) for n in range(15)]
    eventually(lambda: echo.numbers() == everything, "the next 5 delivered after the restart")
    time.sleep(1.5)
    assert echo.numbers() == everything
    assert [d["seq"] for d in deliveries(client)] == list(range(1, 16))
    assert "reconnecting" in client.stderr
    assert relay.info(channel)["cursor"] == 15


def test_a_receiver_that_is_down_gets_each_event_once_it_is_back(relay: Relay, echo: Echo) -> None:
    echo.statuses = [503, 502, 500]
    relay.start("--answer-wait", "0")
    channel = relay.channel()
    client = relay.connect(channel, echo.url)
    post(f"{channel['url']}/hooks/a", 1)
    post(f"{channel['url']}/hooks/b", 2)
    eventually(lambda: len(echo.received) == 5, "3 failed attempts, then both delivered")
    assert echo.numbers() == ["1", "1", "1", "1", "2"]
    lines = eventually(lambda: len(deliveries(client)) == 5 and deliveries(client), "5 lines")
    assert [(d["seq"], d["status"], d["acked"]) for d in lines] == [
        (1, 503, False),
        (1, 502, False),
        (1, 500, False),
        (1, 200, True),
        (2, 200, True),
    ]
    assert relay.info(channel)["cursor"] == 2


def test_a_wrong_token_is_refused_and_nothing_is_forwarded(
    relay: Relay, echo: Echo, hookwise: Shell
) -> None:
    relay.start()
    channel = relay.channel()
    for n in range(3):
        post(f"{channel['url']}/hooks/x", n)

    refused = hookwise("relay", "connect", channel["url"], "--token", "hwr_wrong",
                       "--to", echo.url, timeout=TIMEOUT)  # fmt: skip
    assert refused.code == 1, refused
    assert "refused the token" in refused.stderr
    missing = hookwise("relay", "connect", channel["url"], "--to", echo.url)
    assert missing.code == 2, missing
    assert "HOOKWISE_RELAY_TOKEN" in missing.stderr

    stream = f"{relay.base}/channels/{channel['id']}/stream"
    ack = f"{relay.base}/channels/{channel['id']}/ack"
    for headers in ({}, {"authorization": "Bearer hwr_wrong"}):
        assert httpx.get(stream, headers=headers).status_code == 401
        assert httpx.post(ack, json={"seq": 3, "status": 200}, headers=headers).status_code == 401
    other = relay.channel()
    with_other = {"authorization": f"Bearer {other['token']}"}
    assert httpx.get(stream, headers=with_other).status_code == 401

    assert echo.received == []
    info = relay.info(channel)
    assert (info["cursor"], info["pending"]) == (0, 3)
    shown = hookwise("relay", "channel", "show", channel["url"], "--token", channel["token"],
                     "--json")  # fmt: skip
    assert shown.code == 0, shown
    assert shown.json()["pending"] == 3


def test_an_admin_token_guards_channel_creation(relay: Relay, hookwise: Shell) -> None:
    admin = "relay-admin-token-0123456789"
    relay.start("--admin-token", admin)
    refused = hookwise("relay", "channel", "create", "--server", relay.base)
    assert refused.code == 1, refused
    assert "admin token" in refused.stderr
    created = hookwise("relay", "channel", "create", "--server", relay.base,
                       env={"HOOKWISE_RELAY_ADMIN_TOKEN": admin})  # fmt: skip
    assert created.code == 0, created
    assert "hookwise relay connect" in created.stdout
    assert relay.process is not None
    assert "warning" not in relay.process.stderr.lower()


def test_the_relay_serves_https_with_a_certificate(
    relay: Relay, echo: Echo, hookwise: Shell, project: Path
) -> None:
    cert, key = _self_signed(project)
    process = hookwise.start("relay", "serve", "--port", str(relay.port), "--data", "relay.db",
                             "--tls-cert", str(cert), "--tls-key", str(key))  # fmt: skip
    relay.running.append(process)
    base = f"https://127.0.0.1:{relay.port}"
    trusted = {"SSL_CERT_FILE": str(cert)}
    context = ssl.create_default_context(cafile=str(cert))

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/healthz", verify=context).status_code == 200
        except httpx.TransportError:
            return False

    eventually(healthy, "the relay answering over HTTPS")
    created = hookwise("relay", "channel", "create", "--server", base, "--json", env=trusted)
    assert created.code == 0, created
    channel = created.json()
    assert channel["url"].startswith(f"{base}/c/")
    client = hookwise.start("relay", "connect", channel["url"], "--to", echo.url, "--json",
                            env={**trusted, "HOOKWISE_RELAY_TOKEN": channel["token"]})  # fmt: skip
    relay.running.append(client)
    client.wait_for_output("connected to")
    sent = httpx.post(f"{channel['url']}/hooks/tls", content=b"secret", verify=context)
    assert sent.status_code == 200
    eventually(lambda: [r.body for r in echo.received] == [b"secret"], "delivered over TLS")


def _self_signed(directory: Path) -> tuple[Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "relay-cert.pem"
    key_path = directory / "relay-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
