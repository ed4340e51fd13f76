"""A stand-in for the shop's API: ``GET /orders/ID`` answers the order from shop.json.

    python fake_shop.py            # serves http://127.0.0.1:8001 (or: python fake_shop.py 9001)

shop.json is read on every request: edit it to change an order, or remove one to
make it "deleted" (404). Every request is printed, so you can count the fetches.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STATE = Path(__file__).with_name("shop.json")


class ShopAPI(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        prefix = "/orders/"
        orders = json.loads(STATE.read_text("utf-8"))
        order = orders.get(self.path[len(prefix) :]) if self.path.startswith(prefix) else None
        body = json.dumps(order if order is not None else {"error": "not found"}).encode()
        self.send_response(200 if order is not None else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"shop API: {format % args}", flush=True)


def serve(port: int = 8001) -> ThreadingHTTPServer:
    """The stand-in API on 127.0.0.1:``port`` (0: any free port), not yet serving."""
    return ThreadingHTTPServer(("127.0.0.1", port), ShopAPI)


if __name__ == "__main__":
    server = serve(int(sys.argv[1]) if len(sys.argv) > 1 else 8001)
    print(f"shop API on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
