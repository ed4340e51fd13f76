"""The ``hookwise`` command without a server: init, config errors, migrate, doctor, listings."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from .conftest import SRC, Shell, secret_from_init


def assert_no_traceback(result: object) -> None:
    assert "Traceback" not in str(result), result


def test_init_writes_a_working_config_and_handlers(hookwise: Shell, project: Path) -> None:
    result = hookwise("init")
    assert result.code == 0, result
    config = tomllib.loads((project / "hookwise.toml").read_text())
    assert config["sources"]["demo"]["secrets"] == ["env:HOOKWISE_DEMO_SECRET"]
    assert config["handlers"][0]["call"] == "handlers:on_event"
    handlers = (project / "handlers.py").read_text()
    assert "def on_event(" in handlers and "async def on_event_async(" in handlers
    assert "Retry(" in handlers and "Reject(" in handlers
    compile(handlers, "handlers.py", "exec")

    secret = secret_from_init(result)
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert "hookwise serve" in result.stdout
    assert "hookwise send standard http://127.0.0.1:8000/hooks/demo" in result.stdout


def test_init_generates_a_new_secret_each_time(hookwise: Shell, project: Path) -> None:
    first = secret_from_init(hookwise("init"))
    second = secret_from_init(hookwise("init", "--force"))
    assert first != second


def test_init_refuses_to_overwrite_without_force(hookwise: Shell, project: Path) -> None:
    assert hookwise("init").code == 0
    (project / "handlers.py").write_text("# mine\n")
    result = hookwise("init")
    assert result.code != 0
    assert "--force" in result.stderr
    assert result.stdout == ""
    assert (project / "handlers.py").read_text() == "# mine\n"
    assert_no_traceback(result)

    assert hookwise("init", "--force").code == 0
    assert "def on_event(" in (project / "handlers.py").read_text()


def test_init_into_another_directory(hookwise: Shell, project: Path) -> None:
    result = hookwise("init", "--dir", "svc")
    assert result.code == 0, result
    assert (project / "svc" / "hookwise.toml").exists()
    assert (project / "svc" / "handlers.py").exists()
    assert "cd svc" in result.stdout


def test_a_bad_config_is_one_clear_error_with_exit_code_2(
    initialized: Shell, project: Path
) -> None:
    config = project / "hookwise.toml"
    config.write_text(config.read_text().replace("secrets = [", "secret = ["))
    for command in (["events", "list"], ["migrate"], ["serve"], ["worker"], ["replay", "1"]):
        result = initialized(*command)
        assert result.code == 2, result
        assert "hookwise.toml" in result.stderr
        assert "sources.demo.secret" in result.stderr
        assert "did you mean 'secrets'?" in result.stderr
        assert len(result.stderr.strip().splitlines()) <= 4, result
        assert_no_traceback(result)


def test_a_toml_syntax_error_points_at_the_line(hookwise: Shell, project: Path) -> None:
    (project / "hookwise.toml").write_text('[server]\nport = 8000\nhost = "127.0.0.1\n')
    result = hookwise("events", "list")
    assert result.code == 2, result
    assert "line 3" in result.stderr
    assert_no_traceback(result)


def test_no_config_file_says_to_run_init(hookwise: Shell) -> None:
    result = hookwise("migrate")
    assert result.code == 2, result
    assert "hookwise init" in result.stderr
    assert_no_traceback(result)


def test_an_explicit_config_path_is_used_from_anywhere(initialized: Shell, project: Path) -> None:
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    shell = Shell(elsewhere, initialized.env)
    result = shell("migrate", "-c", str(project / "hookwise.toml"))
    assert result.code == 0, result
    assert (project / "hookwise.db").exists(), "the SQLite path is relative to the config"
    assert not (elsewhere / "hookwise.db").exists()


def test_migrate_creates_the_schema_once(initialized: Shell, project: Path) -> None:
    first = initialized("migrate")
    assert first.code == 0, first
    assert "applied" in first.stdout and "0001" in first.stdout
    assert (project / "hookwise.db").exists()
    second = initialized("migrate")
    assert second.code == 0, second
    assert "up to date" in second.stdout


def test_doctor_passes_on_a_fresh_project(initialized: Shell) -> None:
    assert initialized("migrate").code == 0
    result = initialized("doctor")
    assert result.code == 0, result
    for check in ("config", "secrets", "handlers", "store", "clock"):
        assert any(
            line.startswith("ok") and check in line for line in result.stdout.splitlines()
        ), check
    report = initialized("doctor", "--json").json()
    assert report["ok"] is True
    assert {c["name"] for c in report["checks"]} >= {
        "config",
        "secrets",
        "handlers",
        "store",
        "clock",
    }


def test_doctor_fails_on_a_missing_secret_and_says_what_to_export(initialized: Shell) -> None:
    assert initialized("migrate").code == 0
    result = initialized("doctor", env={"HOOKWISE_DEMO_SECRET": ""})
    assert result.code == 1, result
    assert "HOOKWISE_DEMO_SECRET" in result.stdout
    assert "export HOOKWISE_DEMO_SECRET=" in result.stdout
    assert_no_traceback(result)
    report = initialized("doctor", "--json", env={"HOOKWISE_DEMO_SECRET": ""}).json()
    secrets = next(c for c in report["checks"] if c["name"] == "secrets")
    assert report["ok"] is False and secrets["ok"] is False
    assert "HOOKWISE_DEMO_SECRET" in secrets["fix"]


def test_doctor_reports_a_bad_config_as_a_failed_check(initialized: Shell, project: Path) -> None:
    config = project / "hookwise.toml"
    config.write_text(config.read_text().replace('"standard"', '"standart"'))
    result = initialized("doctor")
    assert result.code == 1, result
    assert "FAIL config" in result.stdout and "did you mean 'standard'?" in result.stdout
    assert_no_traceback(result)


def test_doctor_fails_on_an_unimportable_handler(initialized: Shell, project: Path) -> None:
    assert initialized("migrate").code == 0
    (project / "handlers.py").unlink()
    report = initialized("doctor", "--json").json()
    handlers = next(c for c in report["checks"] if c["name"] == "handlers")
    assert handlers["ok"] is False and "handlers" in handlers["detail"]


def test_doctor_fails_on_an_unmigrated_store(initialized: Shell) -> None:
    result = initialized("doctor")
    assert result.code == 1, result
    assert "hookwise migrate" in result.stdout


def test_listings_of_an_empty_store_are_empty_json(initialized: Shell) -> None:
    assert initialized("migrate").code == 0
    for command in (["events", "list"], ["dlq", "list"]):
        result = initialized(*command, "--json")
        assert result.code == 0, result
        assert result.json() == []


def test_json_output_stays_clean_when_the_config_warns(hookwise: Shell, project: Path) -> None:
    (project / "hookwise.toml").write_text('[sources.open]\nprovider = "none"\n')
    result = hookwise("events", "list", "--json")
    assert result.code == 0, result
    assert result.json() == []
    human = hookwise("events", "list")
    assert "NOT verified" in human.stderr, "warnings are loud outside --json"


def test_showing_an_unknown_event_is_a_short_error(initialized: Shell) -> None:
    result = initialized("events", "show", "99")
    assert result.code == 1, result
    assert "no event #99" in result.stderr
    assert_no_traceback(result)


def test_events_list_rejects_a_bad_since(initialized: Shell) -> None:
    result = initialized("events", "list", "--since", "last tuesday")
    assert result.code == 2, result
    assert "--since" in result.output
    assert_no_traceback(result)


def test_replay_needs_event_numbers_or_a_filter(initialized: Shell) -> None:
    result = initialized("replay")
    assert result.code == 2, result
    assert "--source" in result.output
    assert_no_traceback(result)


def test_send_without_a_secret_says_where_to_put_one(hookwise: Shell) -> None:
    result = hookwise("send", "standard", "http://127.0.0.1:9/hooks/demo")
    assert result.code == 2, result
    assert "--secret" in result.stderr and "HOOKWISE_SEND_SECRET" in result.stderr
    assert_no_traceback(result)


def test_send_to_a_closed_port_fails_cleanly(hookwise: Shell, free_port: int) -> None:
    url = f"http://127.0.0.1:{free_port}/hooks/demo"
    result = hookwise("send", "standard", url, "--secret", "whsec_" + "A" * 43 + "=")
    assert result.code == 1, result
    assert url in result.stderr
    assert_no_traceback(result)


def test_version(hookwise: Shell) -> None:
    result = hookwise("version")
    assert result.code == 0, result
    assert result.stdout.startswith("hookwise ")


def test_help_does_not_import_the_server_or_the_http_client() -> None:
    probe = (
        "import sys, hookwise.cli; "
        "heavy = [m for m in ('uvicorn', 'httpx', 'sqlite3') if m in sys.modules]; "
        "print(heavy)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert completed.stdout.strip() == "[]", completed.stderr


# -- purge and dlq discard --------------------------------------------------------------------

DAY = 86_400.0


def seed(db: Path, events: list[tuple[str, str, str, float]]) -> dict[str, int]:
    """Store ``(key, source, status, age_seconds)`` events in the project's database, each
    with one delivery of handler ``on_event`` brought to ``status`` (done or dead).
    Returns the delivery id of each key."""
    from hookwise.events import NewEvent
    from hookwise.store import Settlement, SQLiteStore

    async def work() -> dict[str, int]:
        ids: dict[str, int] = {}
        async with SQLiteStore(str(db)) as store:
            for key, source, status, age in events:
                received = time.time() - age
                event = NewEvent(
                    source=source, dedup_key=key, type="t", body=b"{}", received_at=received
                )
                await store.append(event, ["on_event"])
                [claim] = await store.claim("seed", limit=1, lease=60, now=received)
                outcome = "done" if status == "done" else "dead"
                settlement = Settlement(
                    delivery_id=claim.delivery_id,
                    fence=claim.fence,
                    owner="seed",
                    outcome=outcome,
                    started_at=received,
                    finished_at=received + 1,
                    error=None if outcome == "done" else "boom",
                )
                assert await store.settle([settlement]) == [True]
                ids[key] = claim.delivery_id
        return ids

    return asyncio.run(work())


def stored_keys(shell: Shell) -> set[str]:
    result = shell("events", "list", "--json")
    assert result.code == 0, result
    return {row["id"] for row in result.json()}


def test_purge_deletes_old_finished_events_and_keeps_dead_letters(
    initialized: Shell, project: Path
) -> None:
    seed(
        project / "hookwise.db",
        [
            ("old-1", "demo", "done", 3 * DAY),
            ("old-2", "demo", "done", 2 * DAY),
            ("old-dead", "demo", "dead", 3 * DAY),
            ("recent", "demo", "done", 60.0),
        ],
    )
    result = initialized("purge", "--older-than", "1d")
    assert result.code == 0, result
    assert "deleted 2 finished events" in result.stdout
    assert "dead letters" in result.stdout
    assert stored_keys(initialized) == {"old-dead", "recent"}

    again = initialized("purge", "--older-than", "1d", "--json")
    assert again.code == 0, again
    document = again.json()
    assert document["deleted"] == 0
    assert document["before"].endswith("Z")


def test_purge_defaults_to_the_configured_retention(initialized: Shell, project: Path) -> None:
    config = project / "hookwise.toml"
    config.write_text(config.read_text().replace("[server]", 'retention = "2d"\n\n[server]', 1))
    seed(
        project / "hookwise.db",
        [("old", "demo", "done", 3 * DAY), ("young", "demo", "done", 1 * DAY)],
    )
    result = initialized("purge")
    assert result.code == 0, result
    assert "deleted 1 finished event " in result.stdout
    assert stored_keys(initialized) == {"young"}


def test_purge_without_an_age_says_how_to_give_one(initialized: Shell) -> None:
    result = initialized("purge")
    assert result.code == 2, result
    assert "--older-than" in result.stderr and 'retention = "30d"' in result.stderr
    assert "hookwise.toml" in result.stderr
    assert_no_traceback(result)


def test_purge_refuses_an_age_too_recent_or_malformed(initialized: Shell) -> None:
    for age, reason in (("10m", "1h or more"), ("soon", "not a duration")):
        result = initialized("purge", "--older-than", age)
        assert result.code == 2, result
        assert "--older-than" in result.output and reason in result.output
        assert_no_traceback(result)


def test_dlq_discard_gives_up_on_dead_letters(initialized: Shell, project: Path) -> None:
    ids = seed(
        project / "hookwise.db",
        [
            ("a", "demo", "dead", 3 * DAY),
            ("b", "demo", "dead", 3 * DAY),
            ("c", "other", "dead", 3 * DAY),
            ("fine", "demo", "done", 3 * DAY),
        ],
    )
    result = initialized("dlq", "discard", str(ids["a"]), str(ids["fine"]))
    assert result.code == 0, result
    assert "discarded 1 dead letter;" in result.stdout
    assert "1 of the ids given are not dead letters" in result.stderr
    dead = initialized("dlq", "list", "--json").json()
    assert sorted(row["id"] for row in dead) == sorted([ids["b"], ids["c"]])

    result = initialized("dlq", "discard", "--all", "--source", "other")
    assert result.code == 0, result
    assert "discarded 1 dead letter;" in result.stdout
    assert [row["id"] for row in initialized("dlq", "list", "--json").json()] == [ids["b"]]

    shown = initialized("events", "show", "1", "--json").json()
    [delivery] = shown["deliveries"]
    assert (delivery["status"], delivery["last_error"]) == ("skipped", "discarded")
    assert len(delivery["attempts_history"]) == 1, "the history is kept"

    purged = initialized("purge", "--older-than", "1d")
    assert purged.code == 0, purged
    assert "deleted 3 finished events" in purged.stdout
    assert stored_keys(initialized) == {"b"}


def test_dlq_discard_needs_ids_or_all(initialized: Shell) -> None:
    for args in (["dlq", "discard"], ["dlq", "discard", "3", "--all"]):
        result = initialized(*args)
        assert result.code == 2, result
        assert "--all" in result.output
        assert_no_traceback(result)


def test_purge_and_discard_explain_themselves(hookwise: Shell) -> None:
    purge = hookwise("purge", "--help")
    assert purge.code == 0, purge
    for phrase in ("finished", "--older-than", "store.retention", "Dead letters", "--config"):
        assert phrase in purge.stdout, phrase
    discard = hookwise("dlq", "discard", "--help")
    assert discard.code == 0, discard
    for phrase in ("skipped", "discarded", "--all", "--source", "hookwise purge"):
        assert phrase in discard.stdout, phrase
    assert "discard" in hookwise("dlq", "--help").stdout
    assert "purge" in hookwise("--help").stdout


# -- rejection records -------------------------------------------------------------------------

LONG_HINT = (
    "the signature's timestamp is 3600s behind this host's clock: check NTP here and on "
    "the sender, or widen tolerance while it is fixed"
)


def seed_rejections(db: Path, records: list[dict[str, object]]) -> list[int]:
    """Store rejection records (fields over defaults) through the store API, oldest
    first; returns their ids in the same order."""
    from hookwise.store import RejectionRecord, SQLiteStore

    async def work() -> list[int]:
        async with SQLiteStore(str(db)) as store:
            for fields in records:
                body = fields.get("body", b'{"type": "ping"}')
                assert isinstance(body, bytes)
                record = {
                    "source": "demo",
                    "received_at": time.time(),
                    "reason": "no_matching_signature",
                    "detail": "no signature matched",
                    "hints": (),
                    "status": 401,
                    "method": "POST",
                    "url": "/hooks/demo",
                    "client": "203.0.113.7:5123",
                    "headers": (("content-type", "application/json"),),
                    "body": body,
                    "body_size": len(body),
                    **fields,
                }
                await store.record_rejections([RejectionRecord(**record)])  # type: ignore[arg-type]
            return [r.id for r in reversed(await store.list_rejections(limit=len(records)))]

    return asyncio.run(work())


def test_rejections_list_shows_the_newest_first_with_the_first_hint(
    initialized: Shell, project: Path
) -> None:
    first, second, third = seed_rejections(
        project / "hookwise.db",
        [
            {"reason": "timestamp_too_old", "hints": (LONG_HINT, "a second hint")},
            {"source": "other", "reason": "ip_not_allowed", "status": 403},
            {"reason": "missing_header"},
        ],
    )
    result = initialized("rejections", "list")
    assert result.code == 0, result
    lines = [line.split() for line in result.stdout.splitlines()]
    assert [line[0] for line in lines[1:] if line and line[0].isdigit()] == [
        str(third),
        str(second),
        str(first),
    ]
    assert "ip_not_allowed" in result.stdout and "403" in result.stdout
    assert "the signature's timestamp is" in result.stdout
    assert LONG_HINT not in " ".join(result.stdout.split()), "the hint is shortened"
    assert "a second hint" not in result.stdout

    rows = initialized("rejections", "list", "--json").json()
    assert [row["id"] for row in rows] == [third, second, first]
    assert rows[2]["hints"] == [LONG_HINT, "a second hint"]
    assert (rows[1]["source"], rows[1]["status"], rows[1]["reason"]) == (
        "other",
        403,
        "ip_not_allowed",
    )
    assert rows[0]["received_at"].endswith("Z")

    only = initialized("rejections", "list", "--source", "other", "--json").json()
    assert [row["id"] for row in only] == [second]
    newest = initialized("rejections", "list", "--limit", "1", "--json").json()
    assert [row["id"] for row in newest] == [third]


def test_rejections_show_tells_everything_kept(initialized: Shell, project: Path) -> None:
    body = b'{"type": "ping",  "data": {}}'
    [text_id, binary_id] = seed_rejections(
        project / "hookwise.db",
        [
            {
                "reason": "timestamp_too_old",
                "detail": "the timestamp is 3600s old (tolerance 300s)",
                "hints": (LONG_HINT, "ou l'horloge de l'expéditeur ⏰"),
                "url": "/hooks/demo?attempt=2",
                "client": None,
                "headers": (("content-type", "application/json"), ("webhook-id", "msg_1")),
                "body": body,
            },
            {"body": b"\x00\xff\xfeAB" * 100, "body_size": 70_000},
        ],
    )
    result = initialized("rejections", "show", str(text_id))
    assert result.code == 0, result
    out = result.stdout
    for text in (
        f"#{text_id}",
        "timestamp_too_old",
        "the timestamp is 3600s old (tolerance 300s)",
        "POST /hooks/demo?attempt=2",
        "webhook-id: msg_1",
        body.decode(),
        f"({len(body)} bytes)",
        "401",
    ):
        assert text in out, text
    hint_lines = [line.strip() for line in out.splitlines() if line.strip().startswith("- ")]
    assert hint_lines == [f"- {LONG_HINT}", "- ou l'horloge de l'expéditeur ⏰"]

    binary = initialized("rejections", "show", str(binary_id))
    assert binary.code == 0, binary
    assert "70000 bytes, the first 500 kept" in binary.stdout
    assert "00000000  00 ff fe 41 42 00 ff fe" in binary.stdout
    assert "(none: hookwise could not tell" in binary.stdout

    document = initialized("rejections", "show", str(binary_id), "--json").json()
    assert base64.b64decode(document["body"]) == b"\x00\xff\xfeAB" * 100
    assert (document["body_encoding"], document["body_size"], document["body_kept"]) == (
        "base64",
        70_000,
        500,
    )
    shown = initialized("rejections", "show", str(text_id), "--json").json()
    assert shown["body"] == body.decode() and shown["json"] == {"type": "ping", "data": {}}
    assert shown["headers"] == [["content-type", "application/json"], ["webhook-id", "msg_1"]]
    assert shown["client"] is None
    assert shown["hints"] == [LONG_HINT, "ou l'horloge de l'expéditeur ⏰"]


def test_rejections_of_an_empty_store_and_an_unknown_id(initialized: Shell) -> None:
    assert initialized("migrate").code == 0
    assert initialized("rejections", "list", "--json").json() == []
    empty = initialized("rejections", "list")
    assert empty.code == 0 and "no rejection records" in empty.stdout, empty

    unknown = initialized("rejections", "show", "99")
    assert unknown.code == 1, unknown
    assert "no rejection record #99" in unknown.stderr
    assert "hookwise rejections list" in unknown.stderr
    assert_no_traceback(unknown)

    for bad in ("0", "99999999999999999999"):
        result = initialized("rejections", "show", bad)
        assert result.code == 2, result
        assert "rejections list" in result.output
        assert_no_traceback(result)


def test_rejections_explain_what_a_record_is(hookwise: Shell) -> None:
    group = hookwise("rejections", "--help")
    assert group.code == 0, group
    text = " ".join(group.stdout.split())
    for phrase in ("refused", "diagnosis", "generic 401 or 403", "list", "show"):
        assert phrase in text, phrase
    for command, phrases in (
        ("list", ("newest first", "diagnosis", "--source", "--limit", "--json", "--config")),
        ("show", ("refused request kept for diagnosis", "401/403", "body_size", "--json")),
    ):
        result = hookwise("rejections", command, "--help")
        assert result.code == 0, result
        text = " ".join(result.stdout.split())
        for phrase in phrases:
            assert phrase in text, (command, phrase)
    assert "rejections" in hookwise("--help").stdout


# -- ordered deliveries in events show / list ---------------------------------------------------


def seed_ordered(db: Path) -> dict[str, int]:
    """Four events about subscription ``sub_1`` under ``ordering = "latest"``: ``e200``
    applied, ``e100`` then stale, ``e300`` due, ``e400`` waiting behind it. Returns
    each key's event number."""
    from hookwise.events import NewEvent
    from hookwise.store import Ordering, Settlement, SQLiteStore

    latest = Ordering("latest")
    now = time.time()

    def event(key: str, occurred: float) -> NewEvent:
        return NewEvent(
            source="demo",
            dedup_key=key,
            type="customer.subscription.updated",
            body=b"{}",
            ordering_key="sub_1",
            occurred_at=occurred,
            received_at=now,
        )

    async def work() -> dict[str, int]:
        seqs: dict[str, int] = {}
        async with SQLiteStore(str(db)) as store:
            seqs["e200"] = (
                await store.append(event("e200", 200.0), ["billing"], ordering=latest)
            ).seq
            [claim] = await store.claim("seed", limit=1, lease=60, now=now)
            settlement = Settlement(
                delivery_id=claim.delivery_id,
                fence=claim.fence,
                owner="seed",
                outcome="done",
                started_at=now,
                finished_at=now + 0.5,
            )
            assert await store.settle([settlement]) == [True]
            for key, occurred in (("e100", 100.0), ("e300", 300.0), ("e400", 400.0)):
                seqs[key] = (
                    await store.append(event(key, occurred), ["billing"], ordering=latest)
                ).seq
        return seqs

    return asyncio.run(work())


def test_events_show_tells_how_an_ordered_delivery_stands(
    initialized: Shell, project: Path
) -> None:
    seqs = seed_ordered(project / "hookwise.db")

    waiting = initialized("events", "show", str(seqs["e400"]))
    assert waiting.code == 0, waiting
    [line] = [row for row in waiting.stdout.splitlines() if "billing:" in row]
    assert "waiting" in line and "behind an earlier event of its key" in line
    assert "ordering latest by key sub_1" in line
    assert f"key state: newest applied event #{seqs['e200']}" in waiting.stdout
    assert "occurred 1970-01-01T00:03:20.000Z" in waiting.stdout

    stale = initialized("events", "show", str(seqs["e100"]))
    assert stale.code == 0, stale
    [line] = [row for row in stale.stdout.splitlines() if "billing:" in row]
    assert "skipped, 0 attempt(s), stale (older than an event already applied for its key)" in line

    document = initialized("events", "show", str(seqs["e400"]), "--json").json()
    assert document["status"] == "pending"  # an event waiting is still to do
    [delivery] = document["deliveries"]
    assert (delivery["status"], delivery["ordering_key"], delivery["policy"]) == (
        "waiting",
        "sub_1",
        "latest",
    )
    assert delivery["ordering_state"]["applied_seq"] == seqs["e200"]
    assert delivery["ordering_state"]["applied_at"] == "1970-01-01T00:03:20.000Z"


def test_events_show_of_an_unordered_delivery_has_no_ordering_lines(
    initialized: Shell, project: Path
) -> None:
    seed(project / "hookwise.db", [("plain", "demo", "done", 60.0)])
    shown = initialized("events", "show", "1")
    assert shown.code == 0, shown
    assert "ordering" not in shown.stdout.split("deliveries")[-1]
    assert "key state" not in shown.stdout
    [delivery] = initialized("events", "show", "1", "--json").json()["deliveries"]
    assert (delivery["policy"], delivery["ordering_state"]) == (None, None)


def test_events_list_finds_events_waiting_their_turn(initialized: Shell, project: Path) -> None:
    seqs = seed_ordered(project / "hookwise.db")
    result = initialized("events", "list", "--status", "waiting", "--json")
    assert result.code == 0, result
    assert [row["seq"] for row in result.json()] == [seqs["e400"]]
    assert result.json()[0]["status"] == "pending"

    table = initialized("events", "list", "--status", "waiting")
    assert table.code == 0, table
    assert "e400" in table.stdout and "e300" not in table.stdout
    skipped = initialized("events", "list", "--status", "skipped", "--json").json()
    assert [row["id"] for row in skipped] == ["e100"]
