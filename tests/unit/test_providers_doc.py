"""docs/providers.md shows every provider as its code describes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookwise.providers import KNOWN_PROVIDERS
from hookwise.providers._table import END, START, providers_markdown, replace_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "providers.md"


def test_the_table_in_the_docs_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert replace_table(text) == text, (
        "docs/providers.md is out of date: run "
        "`python -m hookwise.providers._table --write docs/providers.md`"
    )


def test_every_provider_has_a_row() -> None:
    table = providers_markdown()
    for name in KNOWN_PROVIDERS:
        assert f"| `{name}` |" in table


def test_replacing_needs_the_markers() -> None:
    with pytest.raises(ValueError, match="markers"):
        replace_table("no markers here")
    assert replace_table(f"a\n{START}\nold\n{END}\nb").startswith(f"a\n{START}\n| Provider")
