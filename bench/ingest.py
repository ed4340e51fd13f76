"""Durable ingest, side by side: ``hookwise serve --no-worker`` vs a no-op ASGI app.

Both are served by uvicorn (httptools + uvloop) with the same settings on loopback;
wrk sends pre-signed, distinct Standard Webhooks requests. Runs are interleaved
(noop, group, single, noop, group, single, ...) so that a noisy neighbour hurts all
variants alike, and the medians are compared as ratios.

    python bench/ingest.py                    # 3 rounds of 10 s each, 64 connections
    python bench/ingest.py --rounds 5 --duration 15 --connections 128

Needs ``wrk`` (Debian: ``apt-get install wrk``). Prints a table and writes
``bench/results/ingest-latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from hookwise.config import SourceSettings
from hookwise.providers import build_source

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1mb3ItaG9va3dpc2U="
PYTHON = sys.executable
HOOKWISE = [PYTHON, "-m", "hookwise"]


@dataclass
class Run:
    variant: str
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up")


def write_config(directory: Path, *, group_commit: bool) -> Path:
    path = directory / f"hookwise-{'group' if group_commit else 'single'}.toml"
    db = directory / f"bench-{'group' if group_commit else 'single'}.db"
    path.write_text(
        f"""
[store]
url = "sqlite:///{db}"
durability = "full"
group_commit = {"true" if group_commit else "false"}

[sources.bench]
provider = "standard"
secrets = ["env:HOOKWISE_BENCH_SECRET"]

[[handlers]]
name = "noop"
source = "bench"
call = "noop_handler:handle"
"""
    )
    return path


def make_requests(path: Path, count: int) -> None:
    """Pre-sign ``count`` distinct requests (signed now: they must be sent within the
    5-minute tolerance)."""
    source = build_source(SourceSettings(name="bench", provider="standard", secrets=(SECRET,)))
    now = time.time()
    with path.open("w") as out:
        for i in range(count):
            body = json.dumps(
                {
                    "type": "invoice.paid",
                    "id": f"evt_{uuid.uuid4().hex}",
                    "data": {"object": {"id": f"in_{i}", "amount": 4200, "currency": "eur"}},
                },
                separators=(",", ":"),
            ).encode()
            msg_id = f"msg_{uuid.uuid4().hex}"
            headers = source.sign_headers(body, now=now, delivery_id=msg_id)
            out.write(
                f"{headers['webhook-id']}\t{headers['webhook-timestamp']}\t"
                f"{headers['webhook-signature']}\t{body.decode()}\n"
            )


_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def parse_wrk(output: str) -> tuple[float, float, float, int, int]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    pct = {m.group(1): float(m.group(2)) * scale[m.group(3)] for m in _LATENCY.finditer(output)}
    return rps, pct["50"], pct["99"], int(non2xx.group(1)) if non2xx else 0, total


def run_wrk(url: str, requests_file: Path, duration: int, connections: int, threads: int) -> str:
    env = {
        **os.environ,
        "HOOKWISE_BENCH_REQUESTS": str(requests_file),
        "HOOKWISE_BENCH_THREADS": str(threads),
    }
    result = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(HERE / "presigned.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=duration + 60,
    )
    if "WARNING: thread reused requests" in result.stdout:
        raise RuntimeError("not enough pre-signed requests: raise --expect-rps")
    return result.stdout


def start(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--expect-rps",
        type=int,
        default=40_000,
        help="upper bound used to size the pre-signed request files",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="hookwise-bench-"))
    env = {
        **os.environ,
        "HOOKWISE_BENCH_SECRET": SECRET,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src")]),
    }
    variants = {
        "noop": None,
        "ceiling": None,
        "group": write_config(work, group_commit=True),
        "single": write_config(work, group_commit=False),
    }
    ports = {name: free_port() for name in variants}
    procs = {}
    try:
        for name, config in variants.items():
            if config is None:
                app = "noop_app.py" if name == "noop" else "null_store_app.py"
                cmd = [PYTHON, str(HERE / app), "--port", str(ports[name])]
            else:
                cmd = [
                    *HOOKWISE,
                    "serve",
                    "-c",
                    str(config),
                    "--no-worker",
                    "--port",
                    str(ports[name]),
                ]
            procs[name] = start(cmd, env, work)
        for name in variants:
            wait_up(f"http://127.0.0.1:{ports[name]}/healthz")

        runs: list[Run] = []
        per_run = args.expect_rps * args.duration
        for round_no in range(args.rounds + 1):  # round 0 warms up and is discarded
            for name in variants:
                file = work / f"requests-{name}-{round_no}.tsv"
                make_requests(file, per_run if round_no else args.expect_rps * 3)
                url = f"http://127.0.0.1:{ports[name]}/hooks/bench"
                duration = args.duration if round_no else 2
                out = run_wrk(url, file, duration, args.connections, args.threads)
                file.unlink()
                rps, p50, p99, non2xx, total = parse_wrk(out)
                if round_no:
                    runs.append(Run(name, rps, p50, p99, non2xx, total))
                    print(
                        f"round {round_no} {name:>6}: {rps:9.0f} req/s  p50 {p50:6.2f} ms"
                        f"  p99 {p99:6.2f} ms  non-2xx {non2xx}",
                        flush=True,
                    )
    finally:
        for proc in procs.values():
            stop(proc)

    def median(variant: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in runs if r.variant == variant)

    summary = {name: {f: median(name, f) for f in ("rps", "p50_ms", "p99_ms")} for name in variants}
    ratios = {
        "ceiling_vs_noop_throughput": summary["ceiling"]["rps"] / summary["noop"]["rps"],
        "group_vs_noop_throughput": summary["group"]["rps"] / summary["noop"]["rps"],
        "group_vs_single_throughput": summary["group"]["rps"] / summary["single"]["rps"],
    }
    errors = sum(r.non_2xx for r in runs)
    print()
    print(f"{'variant':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, fig in summary.items():
        print(f"{name:<8} {fig['rps']:9.0f} {fig['p50_ms']:8.2f} {fig['p99_ms']:8.2f}")
    print()
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}x")
    print(f"non-2xx answers: {errors}")
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "args": vars(args),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "runs": [asdict(r) for r in runs],
        "summary": summary,
        "ratios": ratios,
        "non_2xx": errors,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "ingest-latest.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
