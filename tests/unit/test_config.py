"""hookwise.toml -> Settings: defaults, env secrets, overrides, and one clear error per mistake."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path

import pytest

from hookwise.config import (
    STORE_URL_ENV,
    MissingSecretError,
    ServerSettings,
    Settings,
    StoreSettings,
    WorkerSettings,
    load_config,
)
from hookwise.errors import ConfigError

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()

DEMO = """
[sources.demo]
provider = "standard"
secrets = ["env:DEMO_SECRET"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hookwise.toml"
    path.write_text(textwrap.dedent(text), "utf-8")
    return path


def load(tmp_path: Path, text: str, **env: str) -> Settings:
    return load_config(write(tmp_path, text), env={"DEMO_SECRET": SECRET, **env})


def config_error(tmp_path: Path, text: str, **env: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"DEMO_SECRET": SECRET, **env})
    assert caught.value.file == str(path)
    assert caught.value.fix, "every config error says how to fix it"
    return caught.value


# -- defaults and values -----------------------------------------------------------------


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, ""), env={})
    assert settings.store == StoreSettings(url=f"sqlite:///{tmp_path}/hookwise.db")
    assert settings.server == ServerSettings()
    assert settings.worker == WorkerSettings()
    assert settings.sources == {}
    assert settings.handlers == ()
    assert settings.warnings == ()
    assert settings.path == str(tmp_path / "hookwise.toml")


def test_the_default_file_is_hookwise_toml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "[server]\nport = 9001\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(env={}).server.port == 9001


def test_a_full_config_is_read_into_settings(tmp_path: Path) -> None:
    settings = load_config(
        write(
            tmp_path,
            """
            [store]
            url = "sqlite:///data/events.db"
            durability = "normal"
            busy_timeout = "2s"
            group_commit = false
            max_pending = 50

            [server]
            host = "0.0.0.0"
            port = 9000
            max_body_bytes = 2048

            [worker]
            concurrency = 4
            threads = 2
            batch = 10
            lease = "1m"
            poll_interval = "250ms"
            grace = 0

            [sources.demo]
            provider = "standard"
            secrets = ["env:DEMO_SECRET", "env:OLD_SECRET"]
            tolerance = "10m"
            ordering = "none"
            ordering_key = "body:data.id"

            [sources.acme]
            provider = "hmac"
            header = "X-Acme-Signature"
            algorithm = "sha512"
            encoding = "base64"
            prefix = "sha512="
            secrets = ["env:ACME_SECRET"]
            dedup_key = "header:X-Acme-Delivery"
            id_header = "X-Acme-Delivery"

            [[handlers]]
            name = "billing"
            source = "demo"
            events = ["invoice.*", "customer.*"]
            call = "myapp.billing:handle"
            max_attempts = 5
            max_age = "1h30m"
            timeout = 30
            base_delay = "1s"
            max_delay = "10m"

            [[handlers]]
            call = "myapp.audit:record"
            """,
        ),
        env={"DEMO_SECRET": SECRET, "OLD_SECRET": OTHER_SECRET, "ACME_SECRET": "acme-key"},
    )
    assert settings.store == StoreSettings(
        url=f"sqlite:///{tmp_path}/data/events.db",
        durability="normal",
        busy_timeout=2.0,
        group_commit=False,
        max_pending=50,
    )
    assert settings.server == ServerSettings(host="0.0.0.0", port=9000, max_body_bytes=2048)
    assert settings.worker == WorkerSettings(
        concurrency=4, threads=2, batch=10, lease=60.0, poll_interval=0.25, grace=0.0
    )
    demo = settings.sources["demo"]
    assert demo.secrets == (SECRET, OTHER_SECRET)
    assert (demo.tolerance, demo.ordering, demo.ordering_key) == (600.0, "none", "body:data.id")
    acme = settings.sources["acme"]
    assert (acme.header, acme.algorithm, acme.encoding, acme.prefix) == (
        "X-Acme-Signature",
        "sha512",
        "base64",
        "sha512=",
    )
    assert acme.secrets == ("acme-key",)
    assert acme.options == {"id_header": "X-Acme-Delivery"}
    billing, audit = settings.handlers
    assert billing.name == "billing"
    assert billing.events == ("invoice.*", "customer.*")
    assert (billing.max_attempts, billing.max_age, billing.timeout) == (5, 5400.0, 30.0)
    assert (billing.base_delay, billing.max_delay) == (1.0, 600.0)
    assert (audit.name, audit.source, audit.events) == ("record", "*", ("*",))
    assert settings.warnings == ()


@pytest.mark.parametrize(
    ("written", "seconds"),
    [('"5m"', 300.0), ('"3d"', 259200.0), ('"1h30m"', 5400.0), ("90", 90.0), ("1.5", 1.5)],
)
def test_durations_are_text_or_seconds(tmp_path: Path, written: str, seconds: float) -> None:
    settings = load(tmp_path, DEMO + f"tolerance = {written}\n")
    assert settings.sources["demo"].tolerance == seconds


# -- store url ------------------------------------------------------------------------------


def test_a_relative_sqlite_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(tmp_path, '[store]\nurl = "sqlite:///db/hookwise.db"\n')
    assert load_config(path, env={}).store.url == f"sqlite:///{tmp_path}/db/hookwise.db"


def test_an_absolute_sqlite_path_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "sqlite:////var/lib/hookwise/events.db"\n')
    assert load_config(path, env={}).store.url == "sqlite:////var/lib/hookwise/events.db"


def test_hookwise_store_url_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "sqlite:///from-file.db"\n')
    settings = load_config(path, env={STORE_URL_ENV: "memory://"})
    assert settings.store.url == "memory://"


def test_a_bad_hookwise_store_url_is_a_config_error_naming_the_variable(tmp_path: Path) -> None:
    error = config_error(tmp_path, "", **{STORE_URL_ENV: "mysql://db"})
    assert STORE_URL_ENV in (error.key or "")


def test_the_store_url_may_come_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "env:DATABASE_URL"\n')
    assert load_config(path, env={"DATABASE_URL": "memory://"}).store.url == "memory://"


# -- secrets ---------------------------------------------------------------------------------


def test_env_secrets_are_resolved_in_order(tmp_path: Path) -> None:
    settings = load_config(
        write(tmp_path, DEMO.replace('"env:DEMO_SECRET"', '"env:NEW", "env:OLD"')),
        env={"NEW": SECRET, "OLD": OTHER_SECRET},
    )
    assert settings.sources["demo"].secrets == (SECRET, OTHER_SECRET)


@pytest.mark.parametrize("env", [{}, {"DEMO_SECRET": ""}], ids=["unset", "empty"])
def test_a_missing_env_secret_names_the_key_the_variable_and_the_fix(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = write(tmp_path, DEMO)
    with pytest.raises(MissingSecretError) as caught:
        load_config(path, env=env)
    error = caught.value
    assert isinstance(error, ConfigError)
    assert (error.file, error.key) == (str(path), "sources.demo.secrets")
    assert "DEMO_SECRET" in error.problem
    assert error.fix == "export DEMO_SECRET=..."
    assert error.missing == (("sources.demo.secrets", "DEMO_SECRET"),)
    assert error.settings.sources["demo"].secrets == ()


def test_a_paypal_source_needs_its_webhook_id_and_no_secret(tmp_path: Path) -> None:
    path = write(tmp_path, '[sources.pp]\nprovider = "paypal"\nwebhook_id = "env:PP_HOOK"\n')
    settings = load_config(path, env={"PP_HOOK": "9XL90610J3647323C"})
    assert settings.sources["pp"].secrets == ()

    with_secret = write(
        tmp_path, '[sources.pp]\nprovider = "paypal"\nsecrets = ["x"]\nwebhook_id = "W"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(with_secret)
    assert caught.value.key == "sources.pp.secrets" and "webhook_id" in (caught.value.fix or "")

    without_id = write(tmp_path, '[sources.pp]\nprovider = "paypal"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(without_id)
    assert caught.value.key == "sources.pp.webhook_id"


def test_other_providers_still_need_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, '[sources.gh]\nprovider = "github"\n'))
    assert (
        caught.value.key == "sources.gh.secrets" and "at least one secret" in caught.value.problem
    )


def test_every_missing_secret_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        DEMO
        + """
        [sources.other]
        provider = "standard"
        secrets = ["env:OTHER_SECRET"]
        """,
    )
    with pytest.raises(MissingSecretError) as caught:
        load_config(path, env={})
    assert [var for _, var in caught.value.missing] == ["DEMO_SECRET", "OTHER_SECRET"]
    assert caught.value.fix == "export DEMO_SECRET=...; export OTHER_SECRET=..."


def test_a_literal_secret_works_with_a_warning_that_does_not_repeat_it(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, DEMO.replace('"env:DEMO_SECRET"', f'"{SECRET}"')))
    assert settings.sources["demo"].secrets == (SECRET,)
    (warning,) = settings.warnings
    assert "sources.demo.secrets" in warning and "env:NAME" in warning
    assert SECRET not in warning


def test_provider_none_is_accepted_with_a_loud_warning(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, '[sources.open]\nprovider = "none"\n'), env={})
    assert settings.sources["open"].provider == "none"
    (warning,) = settings.warnings
    assert "NOT verified" in warning and "/hooks/open" in warning


# -- one ConfigError per mistake ----------------------------------------------------------------

BAD_CONFIGS = [
    pytest.param("[sorces.demo]\n", "sorces", "did you mean 'sources'?", id="unknown-section"),
    pytest.param('[store]\nurll = "memory://"\n', "store.urll", "'url'", id="unknown-store-key"),
    pytest.param(
        DEMO + 'secret = "x"\n', "sources.demo.secret", "did you mean 'secrets'?", id="typo-secret"
    ),
    pytest.param(
        DEMO + 'tolerence = "5m"\n', "sources.demo.tolerence", "'tolerance'", id="typo-tolerance"
    ),
    pytest.param(
        DEMO + '[[handlers]]\ncall = "h:f"\nevnts = ["*"]\n',
        "handlers[0].evnts",
        "'events'",
        id="unknown-handler-key",
    ),
    pytest.param('[server]\nport = "8000"\n', "server.port", "number", id="port-string"),
    pytest.param("[server]\nport = 70000\n", "server.port", "65535", id="port-too-big"),
    pytest.param("[server]\nport = 0\n", "server.port", "at least 1", id="port-zero"),
    pytest.param("[server]\nport = true\n", "server.port", "number", id="port-bool"),
    pytest.param("[store]\nmax_pending = 0\n", "store.max_pending", "at least 1", id="zero"),
    pytest.param(
        '[store]\ngroup_commit = "yes"\n', "store.group_commit", "true or false", id="bool"
    ),
    pytest.param('[store]\ndurability = "fsync"\n', "store.durability", "full", id="durability"),
    pytest.param('[store]\nurl = "mysql://x/y"\n', "store.url", "sqlite:///", id="store-scheme"),
    pytest.param('[store]\nurl = "sqlite://x.db"\n', "store.url", "sqlite:///", id="two-slashes"),
    pytest.param('store = "memory://"\n', "store", "[store]", id="section-not-table"),
    pytest.param('[worker]\nlease = "soon"\n', "worker.lease", '"5m"', id="bad-duration"),
    pytest.param("[worker]\nlease = 0\n", "worker.lease", '"5m"', id="zero-duration"),
    pytest.param('[worker]\nlease = "-5s"\n', "worker.lease", '"5m"', id="negative-duration"),
    pytest.param(DEMO + 'tolerance = "5 mins"\n', "sources.demo.tolerance", '"5m"', id="tol"),
    pytest.param(DEMO + "tolerance = [1]\n", "sources.demo.tolerance", '"5m"', id="tol-list"),
    pytest.param(
        DEMO + 'ordering = "lastest"\n', "sources.demo.ordering", "'latest'", id="ordering"
    ),
    pytest.param(
        DEMO + 'ordering = "random"\n', "sources.demo.ordering", "coalesce", id="ordering-other"
    ),
    pytest.param(
        DEMO + 'ordering = "latest"\n',
        "sources.demo.ordering_key",
        'add ordering_key = "body:',
        id="ordering-without-key",
    ),
    pytest.param(
        DEMO + 'reorder_window = "5s"\n',
        "sources.demo.reorder_window",
        'set ordering = "serial"',
        id="window-unordered",
    ),
    pytest.param(
        DEMO + 'ordering = "serial"\nordering_key = "data.id"\nreorder_window = "soon"\n',
        "sources.demo.reorder_window",
        '"5m"',
        id="window-not-a-duration",
    ),
    pytest.param(
        DEMO + 'ordering = "serial"\nordering_key = "data.id"\nreorder_window = "-1s"\n',
        "sources.demo.reorder_window",
        '"5m"',
        id="window-negative",
    ),
    pytest.param(
        DEMO + 'ordering = "serial"\nordering_key = "data..id"\n',
        "sources.demo.ordering_key",
        "body:",
        id="ordering-key-not-a-path",
    ),
    pytest.param(
        '[sources.Stripe]\nprovider = "none"\n', "sources.Stripe", "lowercase", id="upper-name"
    ),
    pytest.param(
        '[sources."a b"]\nprovider = "none"\n', "sources.a b", "lowercase", id="space-name"
    ),
    pytest.param('sources.demo = "standard"\n', "sources.demo", "[sources.demo]", id="not-table"),
    pytest.param(
        "[sources.demo]\nsecrets = []\n", "sources.demo.provider", "provider =", id="no-provider"
    ),
    pytest.param(
        '[sources.demo]\nprovider = "stripo"\nsecrets = ["x"]\n',
        "sources.demo.provider",
        "did you mean 'stripe'?",
        id="unknown-provider",
    ),
    pytest.param(
        '[sources.demo]\nprovider = "standart"\nsecrets = ["x"]\n',
        "sources.demo.provider",
        "did you mean 'standard'?",
        id="provider-typo",
    ),
    pytest.param(
        '[sources.demo]\nprovider = "standard"\n', "sources.demo.secrets", "env:", id="no-secret"
    ),
    pytest.param(
        '[sources.demo]\nprovider = "standard"\nsecrets = "env:S"\n',
        "sources.demo.secrets",
        '["env:S"]',
        id="secrets-string",
    ),
    pytest.param(
        '[sources.demo]\nprovider = "standard"\nsecrets = [42]\n',
        "sources.demo.secrets",
        "env:NAME",
        id="secret-number",
    ),
    pytest.param(
        '[sources.demo]\nprovider = "standard"\nsecrets = ["env:9LIVES"]\n',
        "sources.demo.secrets",
        "env:",
        id="bad-env-name",
    ),
    pytest.param(
        DEMO + 'dedup_key = "X-Delivery"\n', "sources.demo.dedup_key", "header:", id="dedup"
    ),
    pytest.param(DEMO + 'type = "kind"\n', "sources.demo.type", "const:", id="type-ref"),
    pytest.param(
        '[sources.acme]\nprovider = "hmac"\nsecrets = ["env:DEMO_SECRET"]\n',
        "sources.acme.header",
        "header =",
        id="provider-rejects",
    ),
    pytest.param(
        '[sources.demo]\nprovider = "standard"\nsecrets = ["env:BAD"]\n',
        "sources.demo.secrets",
        None,
        id="provider-rejects-secret",
    ),
    pytest.param(
        DEMO + 'header = "X-Sig"\n', "sources.demo.header", "hmac", id="field-unused-by-provider"
    ),
    pytest.param("[handlers]\nname = 'x'\n", "handlers", "[[handlers]]", id="handlers-table"),
    pytest.param('handlers = ["h:f"]\n', "handlers[0]", "[[handlers]]", id="handler-string"),
    pytest.param("[[handlers]]\nname = 'x'\n", "handlers[0].call", "module:function", id="no-call"),
    pytest.param(
        '[[handlers]]\ncall = "handlers.on_event"\n',
        "handlers[0].call",
        '"myapp.hooks:on_event"',
        id="call-shape",
    ),
    pytest.param(
        '[[handlers]]\ncall = "h:f"\nname = "a b"\n', "handlers[0].name", "letters", id="name"
    ),
    pytest.param(
        '[[handlers]]\nname = "a"\ncall = "h:f"\n[[handlers]]\nname = "a"\ncall = "h:g"\n',
        "handlers.a.name",
        "own name",
        id="duplicate-handler",
    ),
    pytest.param(
        DEMO + '[[handlers]]\ncall = "h:f"\nsource = "dmeo"\n',
        "handlers.f.source",
        "did you mean 'demo'?",
        id="handler-source-typo",
    ),
    pytest.param(
        '[[handlers]]\ncall = "h:f"\nsource = "stripe"\n',
        "handlers.f.source",
        "[sources.NAME]",
        id="handler-source-none",
    ),
    pytest.param(
        '[[handlers]]\ncall = "h:f"\nevents = "invoice.*"\n',
        "handlers.f.events",
        '["invoice.*"]',
        id="events-string",
    ),
    pytest.param(
        '[[handlers]]\ncall = "h:f"\nevents = [1]\n', "handlers.f.events", "events =", id="ev-int"
    ),
    pytest.param(
        '[[handlers]]\ncall = "h:f"\nevents = []\n', "handlers.f.events", '["*"]', id="e0"
    ),
    pytest.param(
        '[[handlers]]\ncall = "h:f"\nmax_attempts = 0\n',
        "handlers.f.max_attempts",
        "at least 1",
        id="attempts",
    ),
    pytest.param(
        '[[handlers]]\ncall = "h:f"\nmax_age = "forever"\n',
        "handlers.f.max_age",
        '"3d"',
        id="max-age",
    ),
    pytest.param(
        '[[handlers]]\ncall = "h:f"\nbase_delay = "1m"\nmax_delay = "1s"\n',
        "handlers.f.max_delay",
        "base_delay",
        id="delays",
    ),
]


@pytest.mark.parametrize(("text", "key", "fix"), BAD_CONFIGS)
def test_each_mistake_is_one_config_error_naming_file_key_and_fix(
    tmp_path: Path, text: str, key: str, fix: str | None
) -> None:
    error = config_error(tmp_path, text, BAD="whsec_not base64!")
    assert error.key == key
    if fix is not None:
        assert fix in (error.fix or "")
    rendered = str(error)
    assert str(tmp_path / "hookwise.toml") in rendered and f"[{key}]" in rendered
    assert "fix:" in rendered


def test_toml_syntax_errors_give_line_and_column(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[server]\nport = 80\nhost = \n")
    assert "not valid TOML" in error.problem
    assert "line 3, column 8" in (error.fix or "")


def test_a_missing_file_says_to_run_init(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.file == str(path)
    assert caught.value.fix == "run `hookwise init`, or pass -c FILE"
    assert "not found" in caught.value.problem


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    assert caught.value.file == str(tmp_path)


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "hookwise.toml"
    path.write_bytes(b'[server]\nhost = "\xff"\n')
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(path, env={})


def test_a_secret_value_never_appears_in_an_error(tmp_path: Path) -> None:
    literal = "super-secret-value"
    error = config_error(
        tmp_path, f'[sources.demo]\nprovider = "standard"\nsecrets = "{literal}"\n'
    )
    assert literal not in str(error)


# -- retention ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ('"30d"', 30 * 86400.0),
        ('"1h"', 3600.0),
        ('"2w"', 14 * 86400.0),
        ("7200", 7200.0),
        ('"forever"', None),
    ],
)
def test_retention_is_a_duration_or_forever(
    tmp_path: Path, written: str, seconds: float | None
) -> None:
    settings = load(tmp_path, f"[store]\nretention = {written}\n")
    assert settings.store.retention == seconds


def test_without_retention_everything_is_kept(tmp_path: Path) -> None:
    assert load(tmp_path, "[store]\n").store.retention is None
    assert StoreSettings(url="memory://").retention is None


def test_a_retention_under_an_hour_is_refused_with_the_reason(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[store]\nretention = "10m"\n')
    assert error.key == "store.retention"
    assert "redeliver" in error.problem and "'10m'" in error.problem
    assert "forever" in (error.fix or "") and '"30d"' in (error.fix or "")


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ('"a month"', "not a duration"),
        ("-86400", "negative"),
        ("0", "longer than zero"),
        ("true", "expected a duration"),
        ('["30d"]', "expected a duration"),
    ],
)
def test_a_malformed_retention_is_one_clear_error(
    tmp_path: Path, written: str, problem: str
) -> None:
    error = config_error(tmp_path, f"[store]\nretention = {written}\n")
    assert error.key == "store.retention"
    assert problem in error.problem
    assert '"3d"' in (error.fix or "")


def test_pool_size_is_read_and_checked(tmp_path: Path) -> None:
    assert load(tmp_path, "[store]\n").store.pool_size == 10
    assert load(tmp_path, "[store]\npool_size = 4\n").store.pool_size == 4
    error = config_error(tmp_path, "[store]\npool_size = 1\n")
    assert error.key == "store.pool_size"
    assert "at least 2" in str(error)


def test_public_url_and_networks_are_checked() -> None:
    import tomllib

    from hookwise.config import parse_config

    good = parse_config(
        tomllib.loads("""
[server]
trusted_proxies = ["10.0.0.0/8", "192.0.2.7"]

[sources.tw]
provider = "hmac"
header = "X-Sig"
secrets = ["s"]
public_url = "https://hooks.example.com/hooks/tw"
allow_ips = ["203.0.113.0/24"]
"""),
        env={},
    )
    assert good.server.trusted_proxies == ("10.0.0.0/8", "192.0.2.7/32")
    assert good.sources["tw"].public_url == "https://hooks.example.com/hooks/tw"
    assert good.sources["tw"].allow_ips == ("203.0.113.0/24",)
    for key, value, message in [
        ("public_url", '"ftp://x/y"', r"not an http\(s\) URL"),
        ("public_url", '"https://x/y?a=1"', "query"),
        ("allow_ips", '["not-an-ip"]', "not an IP address"),
        ("allow_ips", '"10.0.0.0/8"', "list of networks"),
    ]:
        with pytest.raises(ConfigError, match=message) as info:
            text = (
                f'[sources.tw]\nprovider = "hmac"\nheader = "X"\nsecrets = ["s"]\n{key} = {value}\n'
            )
            parse_config(tomllib.loads(text), env={})
        assert info.value.key == f"sources.tw.{key}"
        assert info.value.fix


# -- ordering -----------------------------------------------------------------------------------

STRIPE = """
[sources.stripe]
provider = "stripe"
secrets = ["env:STRIPE_SECRET"]
"""
HMAC = """
[sources.acme]
provider = "hmac"
header = "X-Acme-Signature"
secrets = ["env:ACME_SECRET"]
"""
KEYS = {"STRIPE_SECRET": "whsec_test", "ACME_SECRET": "acme-key"}


@pytest.mark.parametrize("policy", ["serial", "latest", "coalesce"])
def test_each_ordering_policy_is_accepted_with_the_provider_s_key(
    tmp_path: Path, policy: str
) -> None:
    from hookwise.providers import build_source
    from hookwise.store import Ordering

    settings = load(tmp_path, STRIPE + f'ordering = "{policy}"\n', **KEYS)
    stripe = settings.sources["stripe"]
    assert (stripe.ordering, stripe.reorder_window) == (policy, 0.0)
    assert build_source(stripe).ordering == Ordering(policy)  # type: ignore[arg-type]
    assert settings.warnings == ()  # Stripe gives a key (data.object.id) and a time (created)


def test_an_unordered_source_has_no_ordering(tmp_path: Path) -> None:
    from hookwise.providers import build_source

    for text in (STRIPE, STRIPE + 'ordering = "none"\n'):
        settings = load(tmp_path, text, **KEYS)
        assert build_source(settings.sources["stripe"]).ordering is None


def test_the_reorder_window_is_a_duration_given_to_the_store(tmp_path: Path) -> None:
    from hookwise.providers import build_source
    from hookwise.store import Ordering

    text = STRIPE + 'ordering = "serial"\nreorder_window = "1m30s"\n'
    stripe = load(tmp_path, text, **KEYS).sources["stripe"]
    assert stripe.reorder_window == 90.0
    assert build_source(stripe).ordering == Ordering("serial", 90.0)
    zero = STRIPE + "reorder_window = 0\n"
    assert load(tmp_path, zero, **KEYS).sources["stripe"].reorder_window == 0.0


def test_a_policy_without_any_ordering_key_names_the_key_and_the_fix(tmp_path: Path) -> None:
    error = config_error(tmp_path, HMAC + 'ordering = "serial"\n', **KEYS)
    assert error.key == "sources.acme.ordering_key"
    assert "'hmac' has no default" in error.problem
    assert 'ordering_key = "body:' in (error.fix or "")
    assert 'ordering = "none"' in (error.fix or "")


def test_the_ordering_key_setting_gives_a_key_where_the_provider_has_none(
    tmp_path: Path,
) -> None:
    from hookwise.providers import build_source

    settings = load(tmp_path, HMAC + 'ordering = "serial"\nordering_key = "order.id"\n', **KEYS)
    source = build_source(settings.sources["acme"])
    assert source.ordering is not None and source.ordering.policy == "serial"
    described = source.describe(b'{"order": {"id": "o_7"}}', {}, 0.0)
    assert described.ordering_key == "o_7"
    assert settings.warnings == ()  # serial needs no time


def test_a_provider_that_computes_its_key_needs_no_setting(tmp_path: Path) -> None:
    text = '[sources.slack]\nprovider = "slack"\nsecrets = ["env:SLACK"]\nordering = "serial"\n'
    settings = load(tmp_path, text, SLACK="8f742231b10e8888abcd99yyyzzz85a5")
    assert settings.sources["slack"].ordering == "serial"


@pytest.mark.parametrize(
    ("policy", "warned"),
    [
        ("latest", 'like "serial"'),
        ("coalesce", "can't tell a stale event"),
    ],
)
def test_latest_and_coalesce_without_a_time_warn(tmp_path: Path, policy: str, warned: str) -> None:
    text = HMAC + f'ordering = "{policy}"\nordering_key = "order.id"\n'
    (warning,) = load(tmp_path, text, **KEYS).warnings
    assert warning.startswith(f"{tmp_path / 'hookwise.toml'}: [sources.acme]")
    assert warned in warning and "occurred_at =" in warning
    timed = text + 'occurred_at = "order.updated_at"\n'
    assert load(tmp_path, timed, **KEYS).warnings == ()


def test_a_reorder_window_without_a_time_warns_that_it_only_delays(tmp_path: Path) -> None:
    text = HMAC + 'ordering = "serial"\nordering_key = "order.id"\nreorder_window = "5s"\n'
    (warning,) = load(tmp_path, text, **KEYS).warnings
    assert "reorder_window" in warning and "only delays" in warning


def test_sources_added_in_code_take_ordering_settings() -> None:
    from hookwise import Hookwise
    from hookwise.store import Ordering

    hw = Hookwise(store="memory://")
    hw.source(
        "acme",
        provider="hmac",
        header="X-Sig",
        secrets=["s3cret"],
        ordering="coalesce",
        ordering_key="body:order.id",
        reorder_window="10s",
    )
    assert hw.sources["acme"].ordering == Ordering("coalesce", 10.0)
    with pytest.raises(ConfigError) as caught:
        hw.source("bare", provider="hmac", header="X-Sig", secrets=["s3cret"], ordering="latest")
    assert caught.value.key == "sources.bare.ordering_key"
    with pytest.raises(ConfigError) as caught:
        hw.source("loose", provider="hmac", header="X-Sig", secrets=["s"], reorder_window=5)
    assert caught.value.key == "sources.loose.reorder_window"


def test_every_toml_snippet_of_the_ordering_docs_is_valid_config() -> None:
    import re
    import tomllib

    from hookwise.config import parse_config

    docs = Path(__file__).resolve().parents[2] / "docs" / "ordering.md"
    snippets = re.findall(r"```toml\n(.*?)```", docs.read_text("utf-8"), re.DOTALL)
    assert len(snippets) >= 3
    env = {"STRIPE_WEBHOOK_SECRET": "whsec_test", "SHOP_WEBHOOK_SECRET": "s3cret"}
    for snippet in snippets:
        settings = parse_config(tomllib.loads(snippet), file="docs/ordering.md", env=env)
        assert settings.warnings == (), snippet
        assert all(s.ordering != "none" for s in settings.sources.values()), snippet


# -- polls --------------------------------------------------------------------------------

POLL = """
[polls.issues]
url = "https://api.example.com/issues"
every = "2m"
items = "data"
headers = { Authorization = "env:API_TOKEN" }
"""


def test_polls_are_read_in_order_with_env_headers_resolved(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        POLL
        + """
        [polls.orders]
        url = "https://api.example.com/orders"
        min_every = "10s"
        max_every = "10m"
        source = "shop"
        """,
        API_TOKEN="Bearer t0ken",
    )
    assert list(settings.polls) == ["issues", "orders"]
    issues = settings.polls["issues"]
    assert (issues.url, issues.min_every, issues.max_every, issues.items) == (
        "https://api.example.com/issues",
        120.0,
        120.0,
        "data",
    )
    assert issues.headers == (("Authorization", "Bearer t0ken"),)
    assert issues.source == "issues"
    orders = settings.polls["orders"]
    assert (orders.min_every, orders.max_every, orders.source) == (10.0, 600.0, "shop")
    assert settings.sources == {}


def test_without_polls_there_are_none(tmp_path: Path) -> None:
    assert load(tmp_path, DEMO).polls == {}


def test_a_handler_may_subscribe_to_a_poll_s_source(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        POLL
        + """
        [polls.orders]
        url = "https://api.example.com/orders"
        source = "shop"

        [[handlers]]
        call = "app:on_issue"
        source = "issues"
        events = ["created", "updated"]

        [[handlers]]
        call = "app:on_order"
        source = "shop"
        """,
        API_TOKEN="t",
    )
    assert [(h.name, h.source) for h in settings.handlers] == [
        ("on_issue", "issues"),
        ("on_order", "shop"),
    ]


def test_a_handler_of_an_unknown_source_is_told_about_the_polls_sources(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        POLL + '\n[[handlers]]\ncall = "app:f"\nsource = "isues"\n',
        API_TOKEN="t",
    )
    assert error.key == "handlers.f.source"
    assert error.fix == "did you mean 'issues'?"
    unrelated = config_error(
        tmp_path,
        POLL + '\n[[handlers]]\ncall = "app:f"\nsource = "zzz"\n',
        API_TOKEN="t",
    )
    assert "issues" in (unrelated.fix or "") and "polls" in (unrelated.fix or "")


def test_backfill_points_the_poll_at_the_source(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        DEMO + 'backfill = "issues"\n' + POLL + '\n[[handlers]]\ncall = "app:f"\nsource = "demo"\n',
        API_TOKEN="t",
    )
    assert settings.sources["demo"].backfill == "issues"
    assert settings.polls["issues"].source == "demo"
    assert settings.polls["issues"].name == "issues"
    assert settings.polls["issues"].headers == (("Authorization", "t"),)


def test_backfill_accepts_a_poll_that_already_names_the_source(tmp_path: Path) -> None:
    settings = load(
        tmp_path, DEMO + 'backfill = "issues"\n' + POLL + 'source = "demo"\n', API_TOKEN="t"
    )
    assert settings.polls["issues"].source == "demo"


def test_a_poll_may_feed_a_webhook_source_without_backfill(tmp_path: Path) -> None:
    settings = load(tmp_path, DEMO + POLL + 'source = "demo"\n', API_TOKEN="t")
    assert settings.polls["issues"].source == "demo"
    assert settings.sources["demo"].backfill is None


def test_backfill_of_an_unknown_poll_suggests_the_known_ones(tmp_path: Path) -> None:
    error = config_error(tmp_path, DEMO + 'backfill = "isues"\n' + POLL, API_TOKEN="t")
    assert error.key == "sources.demo.backfill"
    assert "no poll named 'isues'" in error.problem
    assert error.fix == "did you mean 'issues'?"
    far = config_error(tmp_path, DEMO + 'backfill = "zzz"\n' + POLL, API_TOKEN="t")
    assert far.fix == "configured polls: issues"


def test_backfill_without_any_poll_says_how_to_add_one(tmp_path: Path) -> None:
    error = config_error(tmp_path, DEMO + 'backfill = "events"\n')
    assert error.key == "sources.demo.backfill"
    assert "[polls.events]" in (error.fix or "")


def test_backfill_of_a_poll_that_names_another_source_is_an_error(tmp_path: Path) -> None:
    error = config_error(
        tmp_path, DEMO + 'backfill = "issues"\n' + POLL + 'source = "tracker"\n', API_TOKEN="t"
    )
    assert error.key == "polls.issues.source"
    assert "'tracker'" in error.problem and "[sources.demo] backfill" in error.problem
    assert "remove source from [polls.issues]" in (error.fix or "")


def test_two_sources_can_t_backfill_from_one_poll(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        DEMO
        + 'backfill = "issues"\n'
        + '[sources.other]\nprovider = "standard"\nsecrets = ["env:DEMO_SECRET"]\n'
        + 'backfill = "issues"\n'
        + POLL,
        API_TOKEN="t",
    )
    assert error.key == "sources.other.backfill"
    assert "already backfills source 'demo'" in error.problem


def test_backfill_must_be_a_poll_name(tmp_path: Path) -> None:
    error = config_error(tmp_path, DEMO + "backfill = 3\n")
    assert error.key == "sources.demo.backfill"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[polls.issues]\nevery = '1m'\n", "polls.issues.url", "needs a url"),
        (
            "[polls.issues]\nurl = 'https://a.test/x'\nevry = '1m'\n",
            "polls.issues.evry",
            "unknown key",
        ),
        ("[polls.issues]\nurl = 'ftp://a.test/x'\n", "polls.issues.url", "not an http(s) URL"),
        ("[polls.issues]\nurl = 'https://a.test/x'\nevery = 'soon'\n", "polls.issues.every", ""),
        ("[polls]\nissues = 'https://a.test/x'\n", "polls.issues", "expected a table"),
        ("polls = 3\n", "polls", "expected a table"),
        ("[polls.'has space']\nurl = 'https://a.test/x'\n", "polls.has space", "characters"),
        (
            "[polls.issues]\nurl = 'https://a.test/x'\nheaders = { Authorization = 'env:NOPE' }\n",
            "polls.issues.headers.Authorization",
            "NOPE is not set",
        ),
    ],
)
def test_each_poll_mistake_names_file_key_and_fix(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    error = config_error(tmp_path, text)
    assert error.key == key
    assert problem in error.problem


def test_a_misspelled_polls_section_is_suggested(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[pols.issues]\nurl = 'https://a.test/x'\n")
    assert error.key == "pols"
    assert error.fix == "did you mean 'polls'?"


def test_a_poll_emitting_webhook_deliveries_needs_a_webhook_source(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        "[polls.stripe-backfill]\npreset = 'stripe-events'\nsource = 'stripe'\n",
    )
    assert error.key == "polls.stripe-backfill.source"
    assert 'emit = "events"' in error.problem
    settings = load(
        tmp_path,
        DEMO
        + 'backfill = "stripe-backfill"\n'
        + "[polls.stripe-backfill]\npreset = 'stripe-events'\n",
    )
    assert settings.polls["stripe-backfill"].source == "demo"


def test_every_toml_snippet_of_the_configuration_docs_is_valid_config() -> None:
    import re
    import tomllib

    from hookwise.config import parse_config

    text = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text("utf-8")
    snippets = re.findall(r"```toml\n(.*?)```", text, re.DOTALL)
    assert snippets
    for snippet in snippets:
        settings = parse_config(tomllib.loads(snippet), env={"GITHUB_TOKEN": "t"})
        assert settings.polls or settings.sources
