from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookwise.poller import (
    PageSpec,
    PageStep,
    first_page_url,
    next_page,
    next_page_step,
    parse_link_header,
    query_param,
    with_query_param,
)

GITHUB_LINK = (
    '<https://api.github.com/repositories/1300192/issues?page=2>; rel="prev", '
    '<https://api.github.com/repositories/1300192/issues?page=4>; rel="next", '
    '<https://api.github.com/repositories/1300192/issues?page=515>; rel="last", '
    '<https://api.github.com/repositories/1300192/issues?page=1>; rel="first"'
)
ISSUES = "https://api.github.com/repositories/1300192/issues"


# --- Link header ---


def test_github_link_header() -> None:
    assert parse_link_header(GITHUB_LINK) == {
        "prev": f"{ISSUES}?page=2",
        "next": f"{ISSUES}?page=4",
        "last": f"{ISSUES}?page=515",
        "first": f"{ISSUES}?page=1",
    }


def test_several_relations_in_one_link() -> None:
    links = parse_link_header('<https://x.test/p2>; rel="next last"')
    assert links == {"next": "https://x.test/p2", "last": "https://x.test/p2"}


def test_unquoted_params_and_relation_case() -> None:
    links = parse_link_header("<https://x.test/p2>;rel=next, <https://x.test/p9> ; REL=Last")
    assert links == {"next": "https://x.test/p2", "last": "https://x.test/p9"}


def test_relative_urls_resolve_against_the_base() -> None:
    links = parse_link_header(
        '</items?page=3>; rel="next", <page4>; rel="last"', "https://x.test/api/items?page=2"
    )
    assert links == {"next": "https://x.test/items?page=3", "last": "https://x.test/api/page4"}
    assert parse_link_header('</items?page=3>; rel="next"') == {"next": "/items?page=3"}


def test_commas_and_semicolons_inside_urls_and_quotes() -> None:
    value = (
        '<https://x.test/a?ids=1,2;x=y>; title="one, two; three"; rel="next", '
        '<https://x.test/b>; rel="last"'
    )
    assert parse_link_header(value) == {
        "next": "https://x.test/a?ids=1,2;x=y",
        "last": "https://x.test/b",
    }


def test_escaped_quotes_in_a_parameter() -> None:
    value = r'<https://x.test/a>; title="say \"hi\", then go"; rel="next"'
    assert parse_link_header(value) == {"next": "https://x.test/a"}


def test_first_link_and_first_rel_win() -> None:
    value = '<https://x.test/1>; rel="next"; rel="last", <https://x.test/2>; rel="next"'
    assert parse_link_header(value) == {"next": "https://x.test/1"}


def test_malformed_links_are_skipped() -> None:
    value = 'garbage; rel="next", <https://x.test/ok>; rel="last", <https://x.test/no-close'
    assert parse_link_header(value) == {"last": "https://x.test/ok"}
    assert parse_link_header("") == {}
    assert parse_link_header("<https://x.test/norel>") == {}
    assert parse_link_header(",,, ,") == {}


@given(st.text(max_size=200))
def test_link_parser_never_raises(value: str) -> None:
    links = parse_link_header(value, "https://x.test/base")
    assert all(isinstance(url, str) for url in links.values())


# --- query parameters ---


def test_with_query_param_replaces_or_appends() -> None:
    assert with_query_param("https://x.test/i?a=1&page=2&b=%2C", "page", "3") == (
        "https://x.test/i?a=1&page=3&b=%2C"
    )
    assert with_query_param("https://x.test/i", "page", "2") == "https://x.test/i?page=2"
    assert with_query_param("https://x.test/i?a=1", "cursor", "c=1&d") == (
        "https://x.test/i?a=1&cursor=c%3D1%26d"
    )
    assert with_query_param("https://x.test/i?page=1&x=2&page=5#f", "page", "2") == (
        "https://x.test/i?page=2&x=2#f"
    )


@given(
    value=st.text(max_size=30),
    other=st.text(alphabet="abc123-_.", max_size=10),
)
def test_query_param_round_trip(value: str, other: str) -> None:
    url = with_query_param(f"https://x.test/i?keep={other}", "cursor", value)
    assert query_param(url, "cursor") == value
    assert query_param(url, "keep") == other


def test_query_param_missing() -> None:
    assert query_param("https://x.test/i?a=1", "b") is None
    assert query_param("https://x.test/i", "b") is None


# --- PageSpec ---


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "offset"}, "kind"),
        ({"kind": "cursor"}, "cursor_field"),
        ({"kind": "cursor", "cursor_field": "next"}, "cursor_param"),
        ({"kind": "cursor", "cursor_field": "last_item:", "cursor_param": "c"}, "needs a field"),
        ({"kind": "page"}, "page_param"),
        ({"size_param": "per_page"}, "go together"),
        ({"size": 10}, "go together"),
        ({"size_param": "per_page", "size": 0}, "at least 1"),
        ({"kind": "page", "page_param": "page", "start": -1}, "negative"),
        ({"max_pages": 0}, "max_pages"),
    ],
)
def test_page_spec_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PageSpec(**kwargs)


def test_first_page_url_sets_the_size() -> None:
    spec = PageSpec(kind="cursor", cursor_field="c", cursor_param="c", size_param="limit", size=50)
    assert first_page_url(spec, "https://x.test/i?limit=10&a=1") == "https://x.test/i?limit=50&a=1"
    assert first_page_url(PageSpec(), "https://x.test/i?a=1") == "https://x.test/i?a=1"


def step(spec: PageSpec, **kwargs: Any) -> PageStep:
    arguments: dict[str, Any] = {
        "url": "https://x.test/items",
        "headers": {},
        "document": {},
        "items_on_page": 10,
        "page_number": 1,
    } | kwargs
    return next_page_step(spec, **arguments)


# --- kind="none" and "link" ---


def test_single_page() -> None:
    assert step(PageSpec()) == PageStep(url=None, stop="single_page")


def test_link_pages_follow_next() -> None:
    spec = PageSpec(kind="link")
    headers = httpx.Headers({"Link": GITHUB_LINK})
    assert step(spec, url=f"{ISSUES}?page=3", headers=headers) == PageStep(f"{ISSUES}?page=4")
    assert step(spec, headers={"Link": '<https://x.test/items?page=1>; rel="first"'}) == (
        PageStep(url=None, stop="no_next_link")
    )
    assert step(spec) == PageStep(url=None, stop="no_next_link")


def test_link_pages_read_repeated_link_headers() -> None:
    headers = [("Link", '<https://x.test/p1>; rel="prev"'), ("Link", '</p3>; rel="next"')]
    assert step(PageSpec(kind="link"), url="https://x.test/p2", headers=headers).url == (
        "https://x.test/p3"
    )


def test_link_pointing_back_at_itself_stops() -> None:
    headers = {"Link": '<https://x.test/items>; rel="next"'}
    assert step(PageSpec(kind="link"), headers=headers) == PageStep(None, "link_repeated")


def test_an_empty_page_stops_any_listing() -> None:
    headers = {"Link": '<https://x.test/items?page=2>; rel="next"'}
    assert step(PageSpec(kind="link"), headers=headers, items_on_page=0) == PageStep(
        None, "empty_page"
    )


# --- kind="page" ---


def test_page_numbers_count_from_start() -> None:
    spec = PageSpec(kind="page", page_param="page")
    assert step(spec, url="https://x.test/items?q=a", page_number=1).url == (
        "https://x.test/items?q=a&page=2"
    )
    assert step(spec, url="https://x.test/items?page=2&q=a", page_number=2).url == (
        "https://x.test/items?page=3&q=a"
    )
    zero = PageSpec(kind="page", page_param="p", start=0)
    assert step(zero, page_number=1).url == "https://x.test/items?p=1"


def test_a_short_page_is_the_last() -> None:
    spec = PageSpec(kind="page", page_param="page", size_param="per_page", size=10)
    assert step(spec, items_on_page=9) == PageStep(None, "short_page")
    assert step(spec, items_on_page=10).url == "https://x.test/items?page=2"


# --- kind="cursor" ---

STRIPE = PageSpec(
    kind="cursor",
    cursor_field="last_item:id",
    cursor_param="starting_after",
    has_more_field="has_more",
    size_param="limit",
    size=100,
)


def test_stripe_style_cursor_is_the_last_item_id() -> None:
    last = {"id": "cus_2"}
    page = {"object": "list", "data": [{"id": "cus_1"}, last], "has_more": True}
    url = "https://api.stripe.com/v1/customers?limit=100"
    assert step(STRIPE, url=url, document=page, items_on_page=2, last_item=last) == PageStep(
        "https://api.stripe.com/v1/customers?limit=100&starting_after=cus_2"
    )
    done = page | {"has_more": False}
    assert step(STRIPE, url=url, document=done, items_on_page=2, last_item={"id": "cus_2"}) == (
        PageStep(None, "no_more")
    )
    assert step(STRIPE, url=url, document={"data": []}, items_on_page=1, last_item={}) == (
        PageStep(None, "no_more")  # has_more missing counts as false
    )


def test_last_item_cursor_needs_the_last_item() -> None:
    with pytest.raises(ValueError, match="last_item"):
        step(STRIPE, document={"has_more": True})


def test_stripe_cursor_missing_on_the_item() -> None:
    assert step(STRIPE, document={"has_more": True}, last_item={"name": "x"}) == PageStep(
        None, "cursor_missing"
    )


def test_document_cursor() -> None:
    spec = PageSpec(kind="cursor", cursor_field="meta.next_cursor", cursor_param="cursor")
    assert step(spec, document={"meta": {"next_cursor": "abc="}}).url == (
        "https://x.test/items?cursor=abc%3D"
    )
    assert (
        step(
            spec, url="https://x.test/items?cursor=abc%3D", document={"meta": {"next_cursor": 7}}
        ).url
        == "https://x.test/items?cursor=7"
    )
    missing: dict[str, Any]
    for missing in (
        {},
        {"meta": {}},
        {"meta": {"next_cursor": None}},
        {"meta": {"next_cursor": ""}},
        {"meta": {"next_cursor": False}},
        {"meta": {"next_cursor": {"a": 1}}},
    ):
        assert step(spec, document=missing) == PageStep(None, "cursor_missing")


def test_a_repeated_cursor_stops() -> None:
    spec = PageSpec(kind="cursor", cursor_field="next", cursor_param="cursor")
    assert step(spec, url="https://x.test/items?cursor=a%2Fb", document={"next": "a/b"}) == (
        PageStep(None, "cursor_repeated")
    )


def test_max_pages_truncates_only_when_there_is_more() -> None:
    spec = PageSpec(kind="page", page_param="page", max_pages=3)
    assert step(spec, page_number=2).url == "https://x.test/items?page=3"
    truncated = step(spec, page_number=3)
    assert truncated == PageStep(None, "max_pages")
    assert truncated.truncated
    last = step(spec, page_number=3, items_on_page=0)
    assert last == PageStep(None, "empty_page")
    assert not last.truncated


def test_next_page_is_the_url_of_the_step() -> None:
    spec = PageSpec(kind="page", page_param="page")
    arguments: dict[str, Any] = {
        "url": "https://x.test/items",
        "headers": {},
        "document": [],
        "items_on_page": 3,
        "page_number": 4,
    }
    assert next_page(spec, **arguments) == "https://x.test/items?page=5"
    assert next_page(spec, **(arguments | {"items_on_page": 0})) is None


def test_page_number_counts_from_one() -> None:
    with pytest.raises(ValueError, match="page_number"):
        step(PageSpec(), page_number=0)


@given(
    pages=st.lists(st.integers(1, 5), min_size=1, max_size=300),
    max_pages=st.integers(1, 50),
)
def test_a_cursor_that_never_ends_stops_at_max_pages(pages: list[int], max_pages: int) -> None:
    spec = PageSpec(kind="cursor", cursor_field="next", cursor_param="c", max_pages=max_pages)
    url: str | None = "https://x.test/items"
    fetched = 0
    while url is not None:
        fetched += 1
        document = {"next": f"cursor-{fetched}"}
        url = next_page(
            spec,
            url=url,
            headers={},
            document=document,
            items_on_page=pages[fetched % len(pages)],
            page_number=fetched,
        )
    assert fetched == max_pages
