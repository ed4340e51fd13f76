import doctest

import pytest

import hookwise.poller
from hookwise.poller import changes, conditional, interval, manners, pages

MODULES = [changes, conditional, interval, manners, pages]


def _isort_order(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions, as ruff sorts ``__all__``."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_complete() -> None:
    exported = hookwise.poller.__all__
    assert exported == sorted(exported, key=_isort_order)
    for name in exported:
        assert hasattr(hookwise.poller, name), name
    for module in MODULES:
        assert set(module.__all__) <= set(exported), module.__name__


@pytest.mark.parametrize("module", [hookwise.poller, *MODULES], ids=lambda m: m.__name__)
def test_docstring_examples_hold(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0
