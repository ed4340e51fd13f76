"""Keep a local copy of each order in step with the shop, however its webhooks arrive.

The shop's webhooks only say that an order changed. Instead of trusting their payload
or their order, the handler fetches the order as it is now and saves that. With
``ordering = "coalesce"`` hookwise runs one fetch at a time per order, and of the
notifications that pile up meanwhile it runs only the newest: a burst of changes
costs one or two fetches, and the last fetch always comes after the last change.

Settings (environment variables):

- ``SHOP_API_URL``: where the shop's API is (default ``http://127.0.0.1:8001``, the
  stand-in that ``fake_shop.py`` serves).
- ``SHOP_MIRROR``: the folder the copies are saved in, one JSON file per order
  (default ``mirror``, in the working directory).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import httpx

from hookwise import Event, Reject, Retry

log = logging.getLogger("orders")


def sync_order(event: Event) -> None:
    """Fetch the order the event is about and save it (or forget it, once deleted)."""
    order_id = event.ordering_key
    if order_id is None:
        raise Reject("the notification names no order_id")
    api_url = os.environ.get("SHOP_API_URL", "http://127.0.0.1:8001")
    response = httpx.get(f"{api_url}/orders/{order_id}", timeout=10.0)
    if response.status_code == 404:
        _mirror_file(order_id).unlink(missing_ok=True)
        log.info("order %s is gone (after %s)", order_id, event.type)
        return
    if response.status_code == 429:
        raise Retry(after=float(response.headers.get("retry-after", "30")))
    response.raise_for_status()  # a 5xx (or a refused connection) is retried with backoff
    order = response.json()
    _save(_mirror_file(order_id), order)
    log.info("order %s is %s (fetched after %s)", order_id, order.get("status"), event.type)


def _mirror_file(order_id: str) -> Path:
    folder = Path(os.environ.get("SHOP_MIRROR", "mirror"))
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in order_id)
    return folder / f"{safe}.json"


def _save(path: Path, document: object) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    partial.replace(path)  # readers see the old copy or the new one, never half of one
