"""``hookwise verify``: a captured request checked offline against the configured source,
as a user runs it after a delivery was refused."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookwise.config import SourceSettings
from hookwise.providers import build_source

from .conftest import Process, Result, Shell

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"type":"order.created","id":"evt_1","data":{"id":"ord_1","total":4200}}'
CONFIG = """\
[store]
url = "sqlite:///hookwise.db"

[sources.orders]
provider = "standard"
secrets = ["env:ORDERS_SECRET"]
ordering_key = "body:data.id"

[sources.erp]
provider = "basic"
secrets = ["env:ERP_CREDENTIALS"]
"""


@pytest.fixture
def shell(hookwise: Shell, project: Path) -> Shell:
    (project / "hookwise.toml").write_text(CONFIG)
    hookwise.env.update(ORDERS_SECRET=SECRET, ERP_CREDENTIALS="erp:s3cret-password")
    return hookwise


def signed_headers(body: bytes, *, at: float, delivery_id: str = "msg_1") -> dict[str, str]:
    source = build_source(SourceSettings(name="orders", provider="standard", secrets=(SECRET,)))
    return source.sign_headers(body, now=at, delivery_id=delivery_id)


def write_http(
    path: Path, headers: dict[str, str], body: bytes, *, target: str = "/hooks/orders"
) -> str:
    head = f"POST {target} HTTP/1.1\r\nHost: hooks.example.com\r\n"
    head += "Content-Type: application/json\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    path.write_bytes(head.encode("latin-1") + body)
    return path.name


def assert_clean_failure(result: Result, code: int) -> None:
    assert result.code == code, result
    assert "Traceback" not in result.output, result


def test_a_valid_capture_is_valid_and_says_what_would_be_stored(
    shell: Shell, project: Path
) -> None:
    name = write_http(project / "ok.http", signed_headers(BODY, at=time.time()), BODY)
    result = shell("verify", name)
    assert result.code == 0, result
    first = result.stdout.splitlines()[0]
    assert first.startswith("VALID")
    assert "source orders (provider standard)" in first
    assert "http://hooks.example.com/hooks/orders -> 200" in first
    assert "dedup key:    msg_1" in result.stdout
    assert "type:         order.created" in result.stdout
    assert "ordering key: ord_1" in result.stdout


def test_a_tampered_capture_is_rejected_with_its_reason(shell: Shell, project: Path) -> None:
    headers = signed_headers(BODY, at=time.time())
    name = write_http(project / "bad.http", headers, BODY.replace(b"4200", b"1"))
    result = shell("verify", name)
    assert_clean_failure(result, 1)
    assert result.stdout.startswith("REJECTED")
    assert "reason: no_matching_signature" in result.stdout
    assert "detail: none of the 1 signature(s)" in result.stdout


def test_a_stale_capture_gets_the_clock_hint_and_verifies_at_its_own_time(
    shell: Shell, project: Path
) -> None:
    signed_at = time.time() - 2 * 3600
    headers = {"Date": formatdate(signed_at, usegmt=True), **signed_headers(BODY, at=signed_at)}
    name = write_http(project / "stale.http", headers, BODY)

    result = shell("verify", name)
    assert_clean_failure(result, 1)
    assert "reason: timestamp_too_old" in result.stdout
    hints = [line for line in result.stdout.splitlines() if line.startswith("  hint:")]
    assert any("old" in hint and "NTP" in hint for hint in hints), result
    assert "the signature is right, only its age is refused" in result.stdout
    assert f"--now {int(signed_at)}" in result.stdout

    assert shell("verify", name, "--at-capture-time").code == 0
    assert shell("verify", name, "--now", str(int(signed_at))).code == 0
    assert shell("verify", name, "--now", str(int(signed_at) + 3600)).code == 1


def test_a_reserialized_json_body_gets_the_reserialization_hint(
    shell: Shell, project: Path
) -> None:
    headers = signed_headers(BODY, at=time.time())
    pretty = json.dumps(json.loads(BODY), indent=2).encode()
    name = write_http(project / "pretty.http", headers, pretty)
    result = shell("verify", name)
    assert_clean_failure(result, 1)
    assert "reason: no_matching_signature" in result.stdout
    assert "hint: the signature matches the same JSON written compact" in result.stdout
    assert "encoded it again" in result.stdout


def test_a_capture_for_an_unknown_source_is_a_usage_error(shell: Shell, project: Path) -> None:
    headers = signed_headers(BODY, at=time.time())
    name = write_http(project / "other.http", headers, BODY, target="/hooks/billing")
    result = shell("verify", name)
    assert_clean_failure(result, 2)
    assert result.stdout == ""
    assert "no source named 'billing' is configured" in result.stderr
    assert "fix: pass --source with one of: orders, erp" in result.stderr

    result = shell("verify", name, "--source", "orders")
    assert result.code == 0, result


def test_a_capture_without_a_hooks_path_needs_source(shell: Shell, project: Path) -> None:
    name = write_http(project / "bare.http", {}, BODY, target="/webhooks/in")
    result = shell("verify", name)
    assert_clean_failure(result, 2)
    assert "can't tell which source" in result.stderr
    assert "pass --source NAME" in result.stderr


def test_a_malformed_capture_is_a_clear_error(shell: Shell, project: Path) -> None:
    (project / "junk.http").write_bytes(b"this is not a request\n\n{}")
    result = shell("verify", "junk.http")
    assert_clean_failure(result, 2)
    assert "junk.http: line 1 is not a request line" in result.stderr
    assert "fix:" in result.stderr

    result = shell("verify", "missing.http")
    assert_clean_failure(result, 2)
    assert "missing.http: no such file" in result.stderr


def test_bad_times_are_refused(shell: Shell, project: Path) -> None:
    name = write_http(project / "ok.http", signed_headers(BODY, at=time.time()), BODY)
    result = shell("verify", name, "--now", "1", "--at-capture-time")
    assert_clean_failure(result, 2)
    assert "not both" in result.stderr
    for bad in ("inf", "nan", "-1", "1e12"):
        result = shell("verify", name, "--now", bad)
        assert_clean_failure(result, 2)
        assert "is not a time in UNIX seconds" in result.stderr


def test_a_json_capture_with_a_binary_body_and_json_output(shell: Shell, project: Path) -> None:
    body = b"\x00\xffnot json\r\n"
    headers = signed_headers(body, at=time.time(), delivery_id="msg_bin")
    document = {
        "method": "POST",
        "url": "https://hooks.example.com/hooks/orders",
        "headers": [[name, value] for name, value in headers.items()],
        "body_base64": base64.b64encode(body).decode(),
    }
    (project / "bin.json").write_text(json.dumps(document))
    result = shell("verify", "bin.json", "--json")
    assert result.code == 0, result
    verdict: dict[str, Any] = result.json()
    assert verdict["verdict"] == "VALID" and verdict["status"] == 200
    assert verdict["url"] == "https://hooks.example.com/hooks/orders"
    assert verdict["event"]["dedup_key"] == "msg_bin"
    assert verdict["event"]["type"] == "unknown"

    document["body_base64"] = base64.b64encode(body + b"!").decode()
    (project / "bin.json").write_text(json.dumps(document))
    result = shell("verify", "bin.json", "--json")
    assert result.code == 1, result
    verdict = result.json()
    assert (verdict["verdict"], verdict["reason"]) == ("REJECTED", "no_matching_signature")
    assert isinstance(verdict["hints"], list) and isinstance(verdict["notes"], list)


def test_basic_auth_capture(shell: Shell, project: Path) -> None:
    good = base64.b64encode(b"erp:s3cret-password").decode()
    wrong = base64.b64encode(b"erp:old-password").decode()
    auth = {"Authorization": f"Basic {good}"}
    name = write_http(project / "erp.http", auth, BODY, target="/hooks/erp")
    assert shell("verify", name).code == 0
    auth = {"Authorization": f"Basic {wrong}"}
    name = write_http(project / "erp.http", auth, BODY, target="/hooks/erp")
    result = shell("verify", name)
    assert_clean_failure(result, 1)
    assert "reason: bad_credentials" in result.stdout
    assert "the user name matches secret number 1 but the password does not" in result.stdout
    assert "s3cret-password" not in result.output


def test_only_the_checked_sources_secret_must_be_set(shell: Shell, project: Path) -> None:
    name = write_http(project / "ok.http", signed_headers(BODY, at=time.time()), BODY)
    result = shell("verify", name, env={"ERP_CREDENTIALS": ""})
    assert result.code == 0, result
    result = shell("verify", name, env={"ORDERS_SECRET": ""})
    assert_clean_failure(result, 2)
    assert "ORDERS_SECRET" in result.stderr


@pytest.mark.slow
def test_a_rejection_record_is_a_capture(
    shell: Shell, project: Path, free_port: int, running: list[Process]
) -> None:
    process = shell.start("serve", "--port", str(free_port), "--no-worker")
    running.append(process)
    base = f"http://127.0.0.1:{free_port}"
    process.wait_for_http(f"{base}/healthz")
    headers = signed_headers(BODY, at=time.time(), delivery_id="msg_refused")
    pretty = json.dumps(json.loads(BODY), indent=1).encode()
    answer = httpx.post(f"{base}/hooks/orders", content=pretty, headers=headers)
    assert answer.status_code == 401

    deadline = time.monotonic() + 20
    records: list[dict[str, Any]] = []
    while not records and time.monotonic() < deadline:
        listed = shell("rejections", "list", "--json")
        assert listed.code == 0, listed
        records = listed.json()
        time.sleep(0.2)
    assert records, "the refused request was not recorded"
    shown = shell("rejections", "show", str(records[0]["id"]), "--json")
    assert shown.code == 0, shown
    (project / "rejected.json").write_text(shown.stdout)

    result = shell("verify", "rejected.json")
    assert_clean_failure(result, 1)
    assert "source orders (provider standard)" in result.stdout
    assert "reason: no_matching_signature" in result.stdout
    assert "encoded it again" in result.stdout

    signed_body = shell("verify", "rejected.json", "--at-capture-time", "--json")
    assert signed_body.json()["checked_at"] == records[0]["received_at"][:19] + "Z"


def test_the_capture_can_come_from_stdin(shell: Shell, project: Path) -> None:
    name = write_http(project / "ok.http", signed_headers(BODY, at=time.time()), BODY)
    completed = subprocess.run(
        shell.command("verify", "-"),
        cwd=shell.cwd,
        env=shell.env,
        input=(project / name).read_bytes(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(b"VALID")
