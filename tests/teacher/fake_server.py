"""A small OpenAI-compatible server for tests and the benchmark (stdlib only).

``/v1/completions`` and ``/v1/chat/completions`` answer with scripted completions that are pure
functions of the prompt and of each choice's seed (``seed + choice index``; greedy requests ignore
the seed), so a re-run gets byte-identical text. The server counts every *served* sample per
``(prompt, seed-or-greedy)`` key, and can inject faults by request number:

- ``"429"`` (with ``Retry-After: <retry_after>``), ``"429date"`` (an HTTP-date Retry-After),
- ``"500"``, ``"slow"`` (sleeps ``slow_s`` before answering: past the client's timeout),
- ``"drop"`` (closes the connection without a response), ``"malformed"`` (200 with broken JSON),
- ``"few"`` (returns only the first choice); ``reject_n=True`` answers 400 to any ``n > 1``.

Scripted answers: a question ``"... A plus B ..."`` (any two integers) has gold ``A + B``. The
rationale stage (no ``Therefore`` in the prompt) writes one of a few templates ending in a number
that is right unless the sample's hash says otherwise; the answer stage repeats the last number of the
rationale. So yields, duplicates and wrong answers all occur, deterministically.

Run standalone: ``python tests/teacher/fake_server.py --port 8000``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FaultPlan = Callable[[int, dict[str, Any]], str | None]

TEMPLATES = (
    "We add the two numbers. {a} plus {b} is {r}.",
    "First take {a}. Then add {b}. So the total is {r}.",
    "{a} + {b} = {r}.",
)


def _h(*parts: Any) -> int:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big")


def prompt_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        return "\n".join(str(m.get("content", "")) for m in body["messages"])
    return str(body.get("prompt", ""))


def prompt_key(body: dict[str, Any]) -> str:
    if "messages" in body:
        return json.dumps(body["messages"], sort_keys=True, ensure_ascii=False)
    return str(body.get("prompt", ""))


def sample_keys(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """The server-side identity of each choice of a request: ``(prompt, seed + j | "greedy")``."""
    n = int(body.get("n") or 1)
    greedy = float(body.get("temperature", 1.0)) <= 0.0
    seed = int(body.get("seed") or 0)
    return [(prompt_key(body), "greedy" if greedy else seed + j) for j in range(n)]


def scripted_completion(body: dict[str, Any], sample: Any) -> str:
    """The deterministic completion of one choice."""
    text = prompt_text(body)
    if "Therefore" in text:  # stage 2: repeat the rationale's last number
        rationale = text.rsplit("Let's think step by step.", 1)[-1]
        nums = re.findall(r"-?\d+", rationale.split("Therefore")[0])
        return f" {nums[-1]}." if nums else " I do not know."
    question = text.rsplit("Q:", 1)[-1]
    nums = [int(x) for x in re.findall(r"-?\d+", question)]
    a, b = (nums + [0, 0])[:2]
    h = _h(prompt_key(body), sample)
    wrong = (h % 4 == 0) if sample == "greedy" else (h % 3 == 0)
    r = a + b + (1 if wrong else 0)
    return " " + TEMPLATES[(h >> 8) % len(TEMPLATES)].format(a=a, b=b, r=r)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the default backlog (5) resets connections under 64 concurrent clients


class FakeOpenAIServer:
    """``with FakeOpenAIServer() as srv: ... srv.base_url ...``"""

    def __init__(
        self,
        *,
        models: tuple[str, ...] = ("fake-teacher",),
        delay_s: float = 0.0,
        faults: FaultPlan | dict[int, str] | None = None,
        retry_after: str = "0",
        slow_s: float = 1.0,
        reject_n: bool = False,
        api_key: str | None = None,
        port: int = 0,
    ) -> None:
        self.models = models
        self.delay_s = delay_s
        if isinstance(faults, dict):
            table = dict(faults)
            faults = lambda number, body: table.get(number)  # noqa: E731
        self.faults: FaultPlan | None = faults
        self.retry_after = retry_after
        self.slow_s = slow_s
        self.reject_n = reject_n
        self.api_key = api_key
        self.lock = threading.Lock()
        self.counts: Counter[tuple[str, Any]] = Counter()
        self.requests = 0  # every HTTP request received
        self.served_requests = 0  # 200 responses sent
        self.served_samples = 0
        self.fault_log: list[tuple[int, str]] = []
        self.inflight = 0
        self.max_inflight = 0  # most requests handled at once (checks the client's concurrency bound)
        self.bodies: list[dict[str, Any]] = []
        self.keep_bodies = False
        self._httpd = _Server(("127.0.0.1", port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset_counts(self) -> None:
        with self.lock:
            self.counts.clear()
            self.requests = self.served_requests = self.served_samples = self.max_inflight = 0
            self.fault_log.clear()

    # -- request handling --------------------------------------------------------------------------
    def _respond(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            self._respond_inner(handler)
        finally:
            with self.lock:
                self.inflight -= 1

    def _respond_inner(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        with self.lock:
            self.requests += 1
            number = self.requests
        path = handler.path.rstrip("/")
        if not path.endswith(("/completions", "/chat/completions")):
            return _send(handler, 404, {"error": {"message": f"no route {handler.path}", "code": "not_found"}})
        if self.api_key is not None and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _send(handler, 401, {"error": {"message": "invalid api key", "code": "invalid_api_key"}})
        try:
            body = json.loads(raw)
        except ValueError:
            return _send(handler, 400, {"error": {"message": "body is not JSON"}})
        if self.keep_bodies:
            with self.lock:
                self.bodies.append(body)
        if body.get("model") not in self.models:
            return _send(handler, 404, {"error": {"message": f"The model '{body.get('model')}' does not exist", "code": "model_not_found"}})
        n = int(body.get("n") or 1)
        if self.reject_n and n > 1:
            return _send(handler, 400, {"error": {"message": "n > 1 is not supported", "param": "n"}})
        fault = self.faults(number, body) if self.faults else None
        if fault:
            with self.lock:
                self.fault_log.append((number, fault))
            if fault == "429":
                return _send(handler, 429, {"error": {"message": "rate limited"}}, {"Retry-After": self.retry_after})
            if fault == "429date":
                return _send(handler, 429, {"error": {"message": "rate limited"}}, {"Retry-After": formatdate(time.time(), usegmt=True)})
            if fault == "500":
                return _send(handler, 500, {"error": {"message": "internal error"}})
            if fault == "drop":
                handler.close_connection = True
                return None
            if fault == "malformed":
                return _send_raw(handler, 200, b'{"choices": [ {"text": "truncated', "application/json")
            if fault == "slow":
                time.sleep(self.slow_s)
        if self.delay_s:
            time.sleep(self.delay_s)
        keys = sample_keys(body)
        if fault == "few":
            keys = keys[:1]
        chat = "messages" in body
        choices = []
        texts = [scripted_completion(body, key[1]) for key in keys]
        for j, text in enumerate(texts):
            if chat:
                choices.append({"index": j, "message": {"role": "assistant", "content": text.strip()}, "finish_reason": "stop"})
            else:
                choices.append({"index": j, "text": text, "finish_reason": "stop", "logprobs": None})
        usage_c = sum(len(t) // 4 + 1 for t in texts)
        payload = {
            "id": f"cmpl-{number}",
            "object": "chat.completion" if chat else "text_completion",
            "created": 0,
            "model": body["model"],
            "choices": choices,
            "usage": {"prompt_tokens": len(prompt_text(body)) // 4 + 1, "completion_tokens": usage_c,
                      "total_tokens": 0},
        }
        _send(handler, 200, payload)  # raises OSError when the client gave up: not served
        with self.lock:
            self.served_requests += 1
            self.served_samples += len(keys)
            for key in keys:
                self.counts[key] += 1
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else delayed ACKs add 40 ms per response

            def do_POST(self) -> None:  # noqa: N802
                try:
                    server._respond(self)
                except OSError:  # the client went away (timeout, killed): nothing to answer
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    _send_raw(handler, status, json.dumps(payload).encode(), "application/json", headers)


def _send_raw(handler: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(data)
    handler.wfile.flush()


def main() -> None:  # pragma: no cover - manual use
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args()
    srv = FakeOpenAIServer(port=args.port, delay_s=args.delay).start()
    print(f"serving {srv.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
