"""Pagination: from one page of a listing to the URL of the next, or the reason to stop.

APIs page their listings in one of three ways, and :class:`PageSpec` names which:

- ``"link"``: a ``Link: <...>; rel="next"`` header (RFC 8288; GitHub, GitLab, Shopify).
- ``"cursor"``: the response carries the next cursor (``meta.next_cursor``), or, in
  Stripe's style, the cursor is the id of the last item and ``has_more`` says whether
  to go on; the cursor goes back as a query parameter.
- ``"page"``: a page-number query parameter counts up from ``start``.

Every listing stops after ``max_pages`` pages, so a broken API (a cursor that never
ends, a ``next`` link that points back) can't keep a poll busy forever. A listing cut
short that way is not complete: it must not be used to detect deletions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import quote, unquote_plus, urljoin, urlsplit, urlunsplit

from .changes import get_path
from .conditional import HeadersInput, header_values

__all__ = [
    "DEFAULT_MAX_PAGES",
    "LAST_ITEM_PREFIX",
    "PageKind",
    "PageSpec",
    "PageStep",
    "StopReason",
    "first_page_url",
    "next_page",
    "next_page_step",
    "parse_link_header",
    "query_param",
    "with_query_param",
]

DEFAULT_MAX_PAGES = 100
LAST_ITEM_PREFIX: Final = "last_item:"
"""A ``cursor_field`` that starts with this reads the cursor from the last item of the
page instead of the document: ``"last_item:id"`` is Stripe's ``starting_after``."""

PageKind = Literal["none", "link", "cursor", "page"]
StopReason = Literal[
    "single_page",
    "empty_page",
    "short_page",
    "no_next_link",
    "link_repeated",
    "no_more",
    "cursor_missing",
    "cursor_repeated",
    "max_pages",
]


# --- Link header (RFC 8288) ----------------------------------------------------------

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BARE_VALUE = re.compile(r"[^\s;,]+")
_SPACE = " \t"


def parse_link_header(value: str, base_url: str | None = None) -> dict[str, str]:
    """The links of a ``Link`` header by relation type (``rel``), lowercase.

    >>> parse_link_header('<https://api.example.com/items?page=2>; rel="next", '
    ...                   '</items?page=9>; rel="last"', "https://api.example.com/items")
    ... # doctest: +NORMALIZE_WHITESPACE
    {'next': 'https://api.example.com/items?page=2',
     'last': 'https://api.example.com/items?page=9'}

    A link with several relation types (``rel="next last"``) is listed under each.
    Parameters may be quoted or bare. Relative URLs are resolved against ``base_url``
    (the URL that was fetched) when given. When two links share a relation type, the
    first wins; malformed links are skipped.
    """
    links: dict[str, str] = {}
    for target, params in _links(value):
        rel = params.get("rel")
        if rel is None:
            continue
        url = urljoin(base_url, target) if base_url else target
        for relation in rel.split():
            links.setdefault(relation.lower(), url)
    return links


def _links(value: str) -> list[tuple[str, dict[str, str]]]:
    links: list[tuple[str, dict[str, str]]] = []
    end = len(value)
    i = 0
    while i < end:
        while i < end and value[i] in _SPACE + ",":
            i += 1
        if i >= end:
            break
        close = value.find(">", i) if value[i] == "<" else -1
        if close < 0:
            i = _skip_to_next_link(value, i)
            continue
        target = value[i + 1 : close].strip()
        i = close + 1
        params: dict[str, str] = {}
        while True:
            while i < end and value[i] in _SPACE:
                i += 1
            if i >= end or value[i] != ";":
                break
            i += 1
            while i < end and value[i] in _SPACE:
                i += 1
            name_match = _TOKEN.match(value, i)
            if name_match is None:
                break
            name = name_match.group().lower()
            i = name_match.end()
            while i < end and value[i] in _SPACE:
                i += 1
            param_value = ""
            if i < end and value[i] == "=":
                i += 1
                while i < end and value[i] in _SPACE:
                    i += 1
                if i < end and value[i] == '"':
                    param_value, i = _quoted_string(value, i)
                else:
                    bare = _BARE_VALUE.match(value, i)
                    if bare is not None:
                        param_value, i = bare.group(), bare.end()
            # RFC 8288 §3.3: a repeated rel parameter is ignored after the first.
            params.setdefault(name, param_value)
        links.append((target, params))
        i = _skip_to_next_link(value, i)
    return links


def _quoted_string(value: str, start: int) -> tuple[str, int]:
    """The unescaped text of the quoted-string at ``start`` and the index after it."""
    chars: list[str] = []
    i = start + 1
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            chars.append(value[i + 1])
            i += 2
        elif char == '"':
            return "".join(chars), i + 1
        else:
            chars.append(char)
            i += 1
    return "".join(chars), i


def _skip_to_next_link(value: str, i: int) -> int:
    """The index of the comma that ends the link at ``i`` (quotes and <...> respected)."""
    while i < len(value):
        char = value[i]
        if char == ",":
            return i
        if char == '"':
            _, i = _quoted_string(value, i)
        elif char == "<":
            close = value.find(">", i)
            i = len(value) if close < 0 else close + 1
        else:
            i += 1
    return i


# --- query parameters ----------------------------------------------------------------


def query_param(url: str, name: str) -> str | None:
    """The (decoded) value of the first query parameter ``name`` in ``url``, or ``None``.

    >>> query_param("https://api.example.com/v1/items?limit=10&cursor=c%3D2", "cursor")
    'c=2'
    """
    for piece in urlsplit(url).query.split("&"):
        key, _, raw = piece.partition("=")
        if unquote_plus(key) == name:
            return unquote_plus(raw)
    return None


def with_query_param(url: str, name: str, value: str) -> str:
    """``url`` with the query parameter ``name`` set to ``value``, every other one untouched.

    >>> with_query_param("https://api.example.com/items?state=open&page=2", "page", "3")
    'https://api.example.com/items?state=open&page=3'

    The parameter keeps its place (the first one, if it was repeated) or is appended;
    the other parameters keep their exact text and order.
    """
    parts = urlsplit(url)
    pair = f"{quote(name, safe='')}={quote(value, safe='')}"
    pieces: list[str] = []
    placed = False
    for piece in parts.query.split("&") if parts.query else []:
        if unquote_plus(piece.partition("=")[0]) == name:
            if not placed:
                pieces.append(pair)
                placed = True
        else:
            pieces.append(piece)
    if not placed:
        pieces.append(pair)
    return urlunsplit(parts._replace(query="&".join(pieces)))


# --- pages ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageSpec:
    """How a listing is paged.

    >>> PageSpec(kind="link", size_param="per_page", size=100)  # GitHub
    ... # doctest: +ELLIPSIS
    PageSpec(kind='link', ...)
    >>> stripe = PageSpec(kind="cursor", cursor_field="last_item:id",
    ...                   cursor_param="starting_after", has_more_field="has_more")

    - ``cursor_field``: the dotted path to the next cursor in the response
      (``"meta.next_cursor"``), or ``"last_item:<path>"`` for the field of the page's
      last item (``"last_item:id"``, Stripe's style).
    - ``cursor_param``: the query parameter the cursor goes back in.
    - ``has_more_field``: a field that must be ``true`` for there to be a next page.
    - ``page_param`` and ``start``: the page-number parameter and the first page's number.
    - ``size_param`` and ``size``: a page-size parameter set on every page (any kind);
      with ``kind="page"``, a page shorter than ``size`` is the last.
    - ``max_pages``: the most pages one listing fetches.
    """

    kind: PageKind = "none"
    cursor_field: str | None = None
    cursor_param: str | None = None
    has_more_field: str | None = None
    page_param: str | None = None
    start: int = 1
    size_param: str | None = None
    size: int | None = None
    max_pages: int = DEFAULT_MAX_PAGES

    def __post_init__(self) -> None:
        if self.kind not in ("none", "link", "cursor", "page"):
            raise ValueError(
                f"pagination kind must be none, link, cursor or page (got {self.kind!r})"
            )
        if self.kind == "cursor":
            if not self.cursor_field or not self.cursor_param:
                raise ValueError(
                    "cursor pagination needs cursor_field (where the next cursor is, e.g. "
                    '"meta.next_cursor" or "last_item:id") and cursor_param (the query '
                    'parameter, e.g. "cursor" or "starting_after")'
                )
            if self.cursor_field == LAST_ITEM_PREFIX:
                raise ValueError('cursor_field "last_item:" needs a field, e.g. "last_item:id"')
        if self.kind == "page" and not self.page_param:
            raise ValueError('page pagination needs page_param (e.g. "page")')
        if (self.size_param is None) != (self.size is None):
            raise ValueError('size_param and size go together, e.g. "per_page" and 100')
        if self.size is not None and self.size < 1:
            raise ValueError(f"size must be at least 1 (got {self.size})")
        if self.start < 0:
            raise ValueError(f"start can't be negative (got {self.start})")
        if self.max_pages < 1:
            raise ValueError(f"max_pages must be at least 1 (got {self.max_pages})")


@dataclass(frozen=True, slots=True)
class PageStep:
    """The outcome of one page: the next URL, or why the listing stops.

    >>> PageStep(url=None, stop="max_pages").truncated
    True
    """

    url: str | None
    stop: StopReason | None = None

    @property
    def truncated(self) -> bool:
        """True when pages were left unfetched (``max_pages``): the listing is incomplete."""
        return self.stop == "max_pages"


def first_page_url(spec: PageSpec, url: str) -> str:
    """The URL of a listing's first page: ``url`` with the page size set, if any.

    >>> first_page_url(PageSpec(kind="link", size_param="per_page", size=100),
    ...                "https://api.github.com/repos/o/r/issues?state=all")
    'https://api.github.com/repos/o/r/issues?state=all&per_page=100'
    """
    if spec.size_param is not None and spec.size is not None:
        return with_query_param(url, spec.size_param, str(spec.size))
    return url


def next_page(
    spec: PageSpec,
    *,
    url: str,
    headers: HeadersInput,
    document: Any,
    items_on_page: int,
    page_number: int,
    last_item: Any = None,
) -> str | None:
    """The URL of the next page, or ``None`` when the listing is over.

    >>> spec = PageSpec(kind="page", page_param="page")
    >>> next_page(spec, url="https://x.test/items?page=1", headers={}, document=[1, 2],
    ...           items_on_page=2, page_number=1)
    'https://x.test/items?page=2'

    The same as :func:`next_page_step`, without the reason for stopping.
    """
    return next_page_step(
        spec,
        url=url,
        headers=headers,
        document=document,
        items_on_page=items_on_page,
        page_number=page_number,
        last_item=last_item,
    ).url


def next_page_step(
    spec: PageSpec,
    *,
    url: str,
    headers: HeadersInput,
    document: Any,
    items_on_page: int,
    page_number: int,
    last_item: Any = None,
) -> PageStep:
    """The next page's URL, or the reason the listing stops.

    >>> spec = PageSpec(kind="cursor", cursor_field="meta.next", cursor_param="cursor")
    >>> next_page_step(spec, url="https://x.test/items", headers={},
    ...                document={"meta": {"next": None}}, items_on_page=5, page_number=1)
    PageStep(url=None, stop='cursor_missing')

    - ``url``: the URL just fetched (links and parameters are relative to it).
    - ``headers``, ``document``: that page's response headers and parsed JSON body.
    - ``items_on_page``: how many items the page held; an empty page ends any listing.
    - ``page_number``: how many pages this listing has fetched, this one included (1
      for the first); with ``kind="page"`` the next page's number is
      ``start + page_number``.
    - ``last_item``: the page's last item, needed when ``cursor_field`` starts with
      ``"last_item:"``.

    It stops when there is no next link, ``has_more`` is not ``true``, the cursor is
    missing or the same as the one just used, the next link is the URL just fetched, a
    page of ``kind="page"`` is empty or shorter than ``size``, and after ``max_pages``
    (``stop="max_pages"``, :attr:`PageStep.truncated`: only then were pages left).
    """
    if page_number < 1:
        raise ValueError(f"page_number counts the pages fetched, from 1 (got {page_number})")
    step = _next(spec, url, headers, document, items_on_page, page_number, last_item)
    if step.url is not None and page_number >= spec.max_pages:
        return PageStep(url=None, stop="max_pages")
    return step


def _next(
    spec: PageSpec,
    url: str,
    headers: HeadersInput,
    document: Any,
    items_on_page: int,
    page_number: int,
    last_item: Any,
) -> PageStep:
    if spec.kind == "none":
        return PageStep(url=None, stop="single_page")
    if items_on_page <= 0:
        return PageStep(url=None, stop="empty_page")
    if spec.kind == "link":
        link = parse_link_header(", ".join(header_values(headers, "link")), url).get("next")
        if link is None:
            return PageStep(url=None, stop="no_next_link")
        if link == url:
            return PageStep(url=None, stop="link_repeated")
        return PageStep(url=link)
    if spec.kind == "page":
        if spec.size is not None and items_on_page < spec.size:
            return PageStep(url=None, stop="short_page")
        number = str(spec.start + page_number)
        return PageStep(url=with_query_param(url, spec.page_param or "page", number))
    return _next_cursor(spec, url, document, last_item)


def _next_cursor(spec: PageSpec, url: str, document: Any, last_item: Any) -> PageStep:
    cursor_field, cursor_param = spec.cursor_field or "", spec.cursor_param or ""
    if spec.has_more_field and get_path(document, spec.has_more_field, default=None) is not True:
        return PageStep(url=None, stop="no_more")
    if cursor_field.startswith(LAST_ITEM_PREFIX):
        if last_item is None:
            raise ValueError(
                f"cursor_field {cursor_field!r} reads the page's last item: "
                "pass last_item= to next_page"
            )
        found = get_path(last_item, cursor_field[len(LAST_ITEM_PREFIX) :], default=None)
    else:
        found = get_path(document, cursor_field, default=None)
    if isinstance(found, bool) or not isinstance(found, str | int):
        return PageStep(url=None, stop="cursor_missing")
    cursor = str(found)
    if not cursor:
        return PageStep(url=None, stop="cursor_missing")
    if query_param(url, cursor_param) == cursor:
        return PageStep(url=None, stop="cursor_repeated")
    return PageStep(url=with_query_param(url, cursor_param, cursor))
