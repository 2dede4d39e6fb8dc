"""Throughput of the ``openai`` teacher backend against a loopback OpenAI-compatible server.

The server (``tests/teacher/fake_server.py``) runs in its own process. In the same run, and on the
same requests (``--concurrency`` in flight, ``n`` samples each), we measure:

- **bare**: the server's maximum rate as seen by a bare client — ``--concurrency`` keep-alive
  connections written with raw asyncio streams (hand-rolled HTTP/1.1, JSON decoded, nothing else);
- **sdk-bare**: the same SDK without our machinery — one ``AsyncOpenAI`` (``max_retries=0``),
  ``completions.create`` under a semaphore, nothing else (the goal's reference);
- **backend**: ``OpenAIBackend.generate`` (official SDK, our retry loop, semaphore, parsing);
- **backend+cache**: the same, each result also written durably to a ``TeacherCache`` (fsync'd
  appends from the writer thread), i.e. what ``run_teacher_stage`` does.

Rounds alternate (bare, backend, backend+cache, ...) and the median of each is reported, with the
ratios to both references (goal: >= 90 % of sdk-bare; the raw-socket ceiling shows what the
Python HTTP stack itself costs).

    python benchmarks/bench_teacher_openai.py --requests 2000 --concurrency 64 --n 8 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "teacher"))
sys.path.insert(0, str(ROOT / "src"))


def _serve(port_q: mp.Queue, stop: mp.Event) -> None:
    from fake_server import FakeOpenAIServer

    srv = FakeOpenAIServer().start()
    port_q.put(srv.port)
    stop.wait()
    srv.stop()


def _requests(count: int, n: int):
    from prada.data.example import AnswerType, Category, Example
    from prada.teacher.backends import Request, Sampling

    sampling = Sampling(0.7, 1.0, 128)
    out = []
    for i in range(count):
        q = f"Tom has {i} apples and buys {i % 7} more. How many apples?"
        ex = Example(f"bench/{i}", "bench", Category.ARITHMETIC, AnswerType.NUMBER, q, str(i + i % 7))
        out.append(Request("rationale", ex, f"Q: {q}\nA: Let's think step by step.", sampling,
                           tuple(range(1, n + 1)), tuple(f"k{i}-{j}" for j in range(n)), tuple(range(1, n + 1))))
    return out


def _body(req) -> dict:
    return {"model": "fake-teacher", "prompt": req.prompt, "max_tokens": req.sampling.max_tokens,
            "temperature": req.sampling.temperature, "top_p": req.sampling.top_p, "n": req.n, "seed": req.seeds[0]}


async def _raw(base_url: str, requests, concurrency: int) -> tuple[float, int]:
    """``concurrency`` keep-alive connections, each sending its share of the requests in turn."""
    import json
    from urllib.parse import urlparse

    url = urlparse(base_url)
    path = url.path.rstrip("/") + "/completions"
    queue: asyncio.Queue = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    samples = 0

    async def worker() -> None:
        nonlocal samples
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            while not queue.empty():
                req = queue.get_nowait()
                payload = json.dumps(_body(req)).encode()
                writer.write(f"POST {path} HTTP/1.1\r\nHost: {url.hostname}\r\nContent-Type: application/json\r\n"
                             f"Authorization: Bearer EMPTY\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                body = json.loads(await reader.readexactly(length))
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {body}")
                samples += len(body["choices"])
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, samples


async def _sdk_bare(base_url: str, requests, concurrency: int) -> tuple[float, int]:
    import openai

    limits = type(openai.DEFAULT_CONNECTION_LIMITS)(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = openai.AsyncOpenAI(api_key="EMPTY", base_url=base_url, max_retries=0,
                                http_client=openai.DefaultAsyncHttpxClient(limits=limits))
    sem = asyncio.Semaphore(concurrency)
    samples = 0

    async def one(req) -> None:
        nonlocal samples
        async with sem:
            resp = await client.completions.create(model="fake-teacher", prompt=req.prompt, n=req.n, seed=req.seeds[0],
                                                   max_tokens=req.sampling.max_tokens,
                                                   temperature=req.sampling.temperature, top_p=req.sampling.top_p)
        samples += len(resp.choices)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(r) for r in requests))
    dt = time.perf_counter() - t0
    await client.close()
    return dt, samples


async def _httpx(base_url: str, requests, concurrency: int) -> tuple[float, int]:
    """Plain httpx (not in the default table: slower than the SDK's httpx2 here)."""
    import httpx

    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    samples = 0
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def one(req) -> None:
            nonlocal samples
            async with sem:
                r = await client.post("/completions", json=_body(req), headers={"Authorization": "Bearer EMPTY"})
            r.raise_for_status()
            samples += len(r.json()["choices"])

        t0 = time.perf_counter()
        await asyncio.gather(*(one(r) for r in requests))
        return time.perf_counter() - t0, samples


def _backend(base_url: str, requests, concurrency: int, with_cache: bool) -> tuple[float, int]:
    from prada.teacher.backends.openai_backend import OpenAIBackend
    from prada.teacher.cache import TeacherCache

    backend = OpenAIBackend("fake-teacher", base_url=base_url, concurrency=concurrency, max_retries=2)
    samples = 0
    with tempfile.TemporaryDirectory() as d:
        cache = TeacherCache(Path(d) / "cache.jsonl").open() if with_cache else None

        def on_result(result) -> None:
            nonlocal samples
            if not result.ok:
                raise RuntimeError(result.error)
            samples += len(result.texts)
            if cache is not None:
                cache.add(result, backend.name, backend.model)

        t0 = time.perf_counter()
        backend.generate(requests, on_result)
        if cache is not None:
            cache.close()  # every record on disk before the clock stops
        return time.perf_counter() - t0, samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    port_q: mp.Queue = mp.Queue()
    stop = mp.Event()
    server = mp.Process(target=_serve, args=(port_q, stop), daemon=True)
    server.start()
    base_url = f"http://127.0.0.1:{port_q.get(timeout=30)}/v1"
    requests = _requests(args.requests, args.n)
    try:
        # warm-up (connections, imports)
        asyncio.run(_raw(base_url, requests[:200], args.concurrency))
        asyncio.run(_sdk_bare(base_url, requests[:200], args.concurrency))
        _backend(base_url, requests[:200], args.concurrency, False)
        results: dict[str, list[float]] = {"raw-sockets": [], "sdk-bare": [], "backend": [], "backend+cache": []}
        for _ in range(args.rounds):
            for name in results:
                if name == "raw-sockets":
                    dt, samples = asyncio.run(_raw(base_url, requests, args.concurrency))
                elif name == "sdk-bare":
                    dt, samples = asyncio.run(_sdk_bare(base_url, requests, args.concurrency))
                else:
                    dt, samples = _backend(base_url, requests, args.concurrency, name == "backend+cache")
                assert samples == args.requests * args.n, (name, samples)
                results[name].append(args.requests / dt)
    finally:
        stop.set()
        server.join(timeout=10)

    raw = statistics.median(results["raw-sockets"])
    sdk = statistics.median(results["sdk-bare"])
    print(f"openai backend vs bare clients: {args.requests} requests, n={args.n}, concurrency={args.concurrency}, "
          f"{args.rounds} rounds (median)")
    print(f"{'client':<15} {'requests/s':>11} {'samples/s':>11} {'vs sdk-bare':>12} {'vs raw':>8}   rounds (req/s)")
    for name, rates in results.items():
        med = statistics.median(rates)
        print(f"{name:<15} {med:>11.0f} {med * args.n:>11.0f} {100 * med / sdk:>11.1f}% {100 * med / raw:>7.1f}%   "
              + ", ".join(f"{r:.0f}" for r in rates))


if __name__ == "__main__":
    main()
