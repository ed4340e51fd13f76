"""``hookwise advise`` as a user runs it: flags, ``--json``, ``--write-config``, the
questions it asks in a real terminal (a pty), and ``--from-stats`` on a real store."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

from hookwise.config import load_config, parse_config
from hookwise.store import PollState, open_store

from .conftest import Shell

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ANSWER_TIMEOUT = 20.0


def test_flags_give_a_recommendation_with_reasons_and_numbers(hookwise: Shell) -> None:
    result = hookwise(
        "advise",
        "--provider",
        "github",
        "--latency",
        "30s",
        "--changes",
        "200/day",
        "--resources",
        "20",
    )
    assert result.code == 0, result
    assert "Recommendation for GitHub: HYBRID (webhook + reconciliation poll)" in result.stdout
    assert "[provider_never_retries]" in result.stdout
    lines = result.stdout.splitlines()
    first = next(line for line in lines if line.strip().startswith("1."))
    assert "does not retry failed deliveries" in first
    for label in (
        "polling",
        "wasted polls",
        "rate-limit budget",
        "poll bytes/day",
        "detection latency",
        "if down 1d",
    ):
        assert label in result.stdout, label
    assert "57,600 requests/day" in result.stdout  # 2,880 polls/day x 20 repositories


def test_no_public_endpoint_recommends_polling_or_a_relay(hookwise: Shell) -> None:
    result = hookwise(
        "advise",
        "--provider",
        "stripe",
        "--latency",
        "1m",
        "--changes",
        "500/day",
        "--no-public-endpoint",
    )
    assert result.code == 0, result
    assert "Recommendation for Stripe: POLL" in result.stdout
    assert "relay" in result.stdout and "[no_public_endpoint]" in result.stdout


def test_json_prints_one_document(hookwise: Shell) -> None:
    result = hookwise(
        "advise", "--provider", "stripe", "--latency", "5s", "--changes", "2/min", "--json"
    )
    assert result.code == 0, result
    document = result.json()
    assert document["recommendation"] == "webhook"
    assert document["provider"] == "stripe"
    assert all(isinstance(text, str) for text in document["reasons"])
    assert document["reason_codes"][0] == "polls_mostly_wasted"
    assert "retries_cover_downtime" in document["reason_codes"]
    figures = document["figures"]
    assert figures["polls_per_day"] == 17280
    assert figures["webhook_requests_per_day"] == 2880
    assert 0 < figures["wasted_poll_share"] < 1
    assert figures["lost_if_down_webhook"] == 0
    assert result.stderr == ""


def test_json_without_a_provider_takes_the_facts_from_flags(hookwise: Shell) -> None:
    result = hookwise(
        "advise",
        "--latency",
        "10s",
        "--changes",
        "1000000/day",
        "--webhooks",
        "--retry-window",
        "3d",
        "--list",
        "--json",
    )
    assert result.code == 0, result
    document = result.json()
    assert document["recommendation"] == "poll"
    assert document["reason_codes"][0] == "high_change_rate"
    assert document["provider"] is None


def test_write_config_prints_a_block_that_loads(hookwise: Shell) -> None:
    result = hookwise(
        "advise",
        "--provider",
        "github",
        "--latency",
        "30s",
        "--changes",
        "200/day",
        "--write-config",
    )
    assert result.code == 0, result
    assert "HYBRID" in result.stderr  # the advice goes to stderr ...
    raw = tomllib.loads(result.stdout)  # ... and stdout is only the block
    env = {"GITHUB_WEBHOOK_SECRET": "It's a Secret to Everybody", "GITHUB_API_AUTH": "Bearer t"}
    settings = parse_config(raw, env=env)
    assert settings.sources["github"].backfill == "github-backfill"
    assert settings.polls["github-backfill"].preset == "github-deliveries"

    appended = hookwise.cwd / "hookwise.toml"
    appended.write_text('[store]\nurl = "sqlite:///hookwise.db"\n' + result.stdout, "utf-8")
    assert load_config(appended, env=env).polls["github-backfill"].min_every == 300


def test_write_config_in_json(hookwise: Shell) -> None:
    result = hookwise(
        "advise",
        "--latency",
        "1h",
        "--changes",
        "1/day",
        "--write-config",
        "--json",
        "--name",
        "catalogue",
    )
    assert result.code == 0, result
    document = result.json()
    assert document["recommendation"] == "poll"
    settings = parse_config(tomllib.loads(document["config"]), env={"CATALOGUE_API_AUTH": "t"})
    assert settings.polls["catalogue"].max_every == 3600
    assert [item["name"] for item in document["config_env"]] == ["CATALOGUE_API_AUTH"]


def test_provider_list(hookwise: Shell) -> None:
    result = hookwise("advise", "--provider", "list", "--json")
    assert result.code == 0, result
    names = {entry["name"]: entry for entry in result.json()}
    assert names["github"]["retry_window_s"] == 0
    assert names["stripe"]["reconcile_preset"] == "stripe-events"
    assert names["rss"]["webhooks"] is False


def test_bad_input_is_a_clear_usage_error(hookwise: Shell) -> None:
    rate = hookwise("advise", "--latency", "5s", "--changes", "10")
    assert rate.code == 2, rate
    assert "has no period; write it like 10/day" in rate.stderr

    provider = hookwise("advise", "--provider", "strpe", "--latency", "5s", "--changes", "1/h")
    assert provider.code == 2, provider
    assert "did you mean 'stripe'" in provider.stderr

    latency = hookwise("advise", "--latency", "soon", "--changes", "1/h")
    assert latency.code == 2 and "is not a duration" in latency.stderr

    missing = hookwise("advise", "--changes", "1/h")  # no terminal to ask in
    assert missing.code == 2, missing
    assert "--latency" in missing.stderr and "hookwise advise -i" in missing.stderr
    assert "Traceback" not in missing.output


# -- interactive, through a pseudo-terminal -----------------------------------------------


class Terminal:
    """The command on a pty, as a person at a terminal would run it."""

    def __init__(self, shell: Shell, *args: str) -> None:
        master, slave = os.openpty()
        self.master = master
        self.popen = subprocess.Popen(
            shell.command(*args),
            cwd=shell.cwd,
            env={**shell.env, "TERM": "dumb"},
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = ANSWER_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{text!r} never appeared; the terminal shows:\n{self.seen}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    if text not in self.seen:
                        raise AssertionError(f"{text!r} never appeared:\n{self.seen}")
                    break
                self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")

    def answer(self, prompt: str, reply: str) -> None:
        self.expect(prompt)
        self.seen = self.seen[self.seen.index(prompt) + len(prompt) :]
        os.write(self.master, reply.encode() + b"\r")

    def finish(self, timeout: float = ANSWER_TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while self.popen.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        code = self.popen.wait(timeout=5)
        while True:  # what is left on the terminal
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                break
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        return code

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=5)
        os.close(self.master)


def test_interactive_asks_what_the_flags_left_open(hookwise: Shell) -> None:
    terminal = Terminal(hookwise, "advise")
    try:
        terminal.answer("Which provider or API?", "github")
        terminal.answer("How fresh must the data be?", "30s")
        terminal.answer("How often does it change", "10")  # no period: asked again
        terminal.expect("has no period")
        terminal.answer("How often does it change", "200/day")
        terminal.answer("How many resources are watched", "20")
        terminal.answer("Can the receiver be reached from the internet", "y")
        code = terminal.finish()
    finally:
        terminal.close()
    assert code == 0, terminal.seen
    assert "HYBRID (webhook + reconciliation poll)" in terminal.seen
    assert "provider_never_retries" in terminal.seen


def test_interactive_asks_only_what_it_needs(hookwise: Shell) -> None:
    terminal = Terminal(hookwise, "advise", "--provider", "rss", "--latency", "1h", "-i")
    try:
        terminal.answer("Do you run that system too", "n")
        terminal.answer("How often does it change", "1/day")
        code = terminal.finish()
    finally:
        terminal.close()
    assert code == 0, terminal.seen
    assert "Recommendation for an RSS or Atom feed: POLL" in terminal.seen
    for question in ("Which provider", "How fresh", "How many resources", "Can the receiver"):
        assert question not in terminal.seen, question


def test_interactive_json_keeps_stdout_clean(hookwise: Shell) -> None:
    """Prompts go to the terminal's stderr side; with -i and --json, stdout is the JSON."""
    process = subprocess.run(
        hookwise.command("advise", "-i", "--json", "--provider", "stripe"),
        cwd=hookwise.cwd,
        env=hookwise.env,
        input="5s\n2/min\ny\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    import json

    document: dict[str, Any] = json.loads(process.stdout)
    assert document["recommendation"] == "webhook"
    assert "How fresh must the data be?" in process.stderr


# -- --from-stats -------------------------------------------------------------------------

CONFIG = """
[store]
url = "sqlite:///hookwise.db"

[polls.issues]
url = "https://api.github.com/repos/acme/app/issues?state=all"
min_every = "15s"
max_every = "1m"
"""


def save_state(project: Path, state: PollState) -> None:
    settings = load_config(project / "hookwise.toml")

    async def work() -> None:
        async with open_store(settings.store) as store:
            await store.save_poll_state(state)

    asyncio.run(work())


def test_from_stats_judges_a_running_poll(hookwise: Shell) -> None:
    (hookwise.cwd / "hookwise.toml").write_text(CONFIG, "utf-8")
    stats = {
        "requests": 480,
        "not_modified": 470,
        "changes": 10,
        "bytes": 40_000,
        "latency_bound": 60.0,
    }
    save_state(
        hookwise.cwd,
        PollState("issues", interval=60.0, stats=stats, updated_at=time.time()),
    )
    result = hookwise("advise", "--from-stats", "issues", "--json")
    assert result.code == 0, result
    document = result.json()
    assert document["provider"] == "github"  # from the poll's url
    assert document["runs"] == 480 and document["enough_data"] is True
    assert document["verdict"] == "become_hybrid"
    assert document["recommendation"] == "hybrid"
    assert document["observed"]["not_modified_share"] == round(470 / 480, 6)
    assert any("no time of the first run" in text for text in document["assumptions"])

    text = hookwise("advise", "--from-stats", "issues", "--latency", "1m")
    assert text.code == 0, text
    assert "issues: make it a webhook + reconciliation poll" in text.stdout
    assert "Assumed" in text.stdout

    relaxed = hookwise("advise", "--from-stats", "issues", "--latency", "1h", "--json")
    assert relaxed.code == 0, relaxed
    assert relaxed.json()["verdict"] == "relax_interval"  # an hour-old copy: poll hourly
    assert relaxed.json()["reason_codes"][0] == "polling_is_cheap"


def test_from_stats_without_webhooks_suggests_a_longer_interval(hookwise: Shell) -> None:
    (hookwise.cwd / "hookwise.toml").write_text(
        CONFIG.replace("api.github.com/repos/acme/app", "feeds.example.com"), "utf-8"
    )
    stats = {"requests": 200, "not_modified": 198, "changes": 2}
    save_state(hookwise.cwd, PollState("issues", interval=60.0, stats=stats, updated_at=1.0))
    result = hookwise("advise", "--from-stats", "issues", "--latency", "30m", "--json")
    assert result.code == 0, result
    document = result.json()
    assert document["verdict"] == "relax_interval"
    assert document["suggested_every_s"] == 1800


def test_from_stats_with_too_few_runs(hookwise: Shell) -> None:
    (hookwise.cwd / "hookwise.toml").write_text(CONFIG, "utf-8")
    save_state(
        hookwise.cwd,
        PollState("issues", interval=15.0, stats={"requests": 3, "changes": 1}, updated_at=1.0),
    )
    result = hookwise("advise", "--from-stats", "issues")
    assert result.code == 0, result
    assert "not enough data yet (3 runs)" in result.stdout


def test_from_stats_of_an_unknown_poll(hookwise: Shell) -> None:
    (hookwise.cwd / "hookwise.toml").write_text(CONFIG, "utf-8")
    result = hookwise("advise", "--from-stats", "isues")
    assert result.code == 2, result
    assert "no poll named 'isues'" in result.stderr and "issues" in result.stderr

    never = hookwise("advise", "--from-stats", "issues")
    assert never.code == 0, never
    assert "not enough data yet (0 runs)" in never.stdout

    mixed = hookwise("advise", "--from-stats", "issues", "--write-config")
    assert mixed.code == 2 and "doesn't go with --from-stats" in mixed.stderr
