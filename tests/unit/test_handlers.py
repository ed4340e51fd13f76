import pytest

from hookwise.errors import ConfigError
from hookwise.handlers import HandlerRegistry, HandlerSpec, import_callable


def noop(event: object) -> None:
    del event


def test_routing_by_source_and_glob() -> None:
    registry = HandlerRegistry()
    registry.add(HandlerSpec("billing", noop, source="stripe", patterns=("invoice.*", "charge.*")))
    registry.add(HandlerSpec("audit", noop, source="*"))
    registry.add(HandlerSpec("gh", noop, source="github", patterns=("push",)))
    assert registry.route("stripe", "invoice.paid") == ("billing", "audit")
    assert registry.route("stripe", "customer.created") == ("audit",)
    assert registry.route("github", "push") == ("audit", "gh")
    assert registry.route("github", "pushed") == ("audit",)
    # cached answers stay right after a new registration
    registry.add(HandlerSpec("late", noop, source="stripe", patterns=("invoice.paid",)))
    assert registry.route("stripe", "invoice.paid") == ("billing", "audit", "late")


def test_glob_is_case_sensitive_and_exact() -> None:
    registry = HandlerRegistry()
    registry.add(HandlerSpec("h", noop, patterns=("Order.?aid",)))
    assert registry.route("s", "Order.paid") == ("h",)
    assert registry.route("s", "order.paid") == ()


def test_duplicate_names_are_a_config_error() -> None:
    registry = HandlerRegistry()
    registry.add(HandlerSpec("h", noop))
    with pytest.raises(ConfigError, match="already registered"):
        registry.add(HandlerSpec("h", noop))


def test_import_callable() -> None:
    assert import_callable("json:dumps").__name__ == "dumps"
    assert import_callable("os.path.join").__name__ == "join"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nosuchmodule_xyz:f", "can't import module"),
        ("json:nope", "has no attribute"),
        ("json:__doc__", "not callable"),
        ("justaname", "not an importable callable"),
    ],
)
def test_import_callable_errors_name_the_fix(target: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        import_callable(target, key="handlers[0].call", file="hookwise.toml")
    assert "hookwise.toml" in str(info.value)
    assert "fix:" in str(info.value)
