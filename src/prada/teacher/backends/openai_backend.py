"""Any OpenAI-compatible HTTP endpoint, through the official ``openai`` SDK (``AsyncOpenAI``).

- Plain models use the completions API; ``teacher.chat: true`` uses chat completions.
- Requests run concurrently on one event loop; an ``asyncio.Semaphore`` bounds the requests in
  flight (``teacher.concurrency``). A request waiting out a back-off does not hold a slot.
- Several samples per request (``n``) when ``teacher.use_n``; if the server rejects ``n > 1``
  (HTTP 400) or returns fewer choices, the backend switches to one sample per request for the rest
  of the run (choices already received are kept).
- The SDK's own retries are off (``max_retries=0``); this module retries 408/409/429/5xx, timeouts,
  connection errors and malformed responses with exponential back-off and full jitter
  (``uniform(0, min(cap, base * 2**attempt))``), honouring ``Retry-After`` / ``retry-after-ms``
  (seconds or an HTTP date) when the server sends one, for at most ``teacher.max_retries`` retries.
  A request that still fails becomes an error ``Result`` (recorded, retried by the next run).
  401/403 (key rejected) and 404 (unknown model or endpoint) abort the run with a ``TeacherError``.
- The API key is read from the environment variable named by ``teacher.api_key_env`` only. For a
  loopback ``base_url`` (127.0.0.1, ::1, localhost — a local vLLM/llama.cpp/TGI server) a missing
  variable is fine and a dummy key is sent.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from prada.errors import TeacherError
from prada.redact import redact_text
from prada.teacher.backends.base import OnResult, Request, Result, Usage

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429})
DEFAULT_BACKOFF_BASE_S = 0.5
DEFAULT_BACKOFF_MAX_S = 30.0
MAX_RETRY_AFTER_S = 600.0
MAX_N_PER_REQUEST = 128
CONNECTIONS_PER_CLIENT = 16


def is_loopback_url(url: str | None) -> bool:
    """True for ``http://127.0.0.1:8000/v1``, ``http://localhost/v1``, ``http://[::1]/v1``.

    >>> is_loopback_url("http://127.0.0.1:8000/v1"), is_loopback_url("https://api.openai.com/v1")
    (True, False)
    """
    if not url:
        return False
    host = urlparse(url).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date), else None.

    >>> parse_retry_after({"retry-after": "2"})
    2.0
    >>> parse_retry_after({"retry-after-ms": "250"})
    0.25
    >>> parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0)
    10.0
    >>> parse_retry_after({}) is None
    True
    """
    if headers is None:
        return None
    get = headers.get
    ms = get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, min(float(ms) / 1000.0, MAX_RETRY_AFTER_S))
        except ValueError:
            pass
    value = get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        now_dt = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
        seconds = (when - now_dt).total_seconds()
    return max(0.0, min(seconds, MAX_RETRY_AFTER_S))


class MalformedResponse(Exception):
    """A 2xx response whose body is not the expected JSON."""


class _NRejected(Exception):
    """The server refused ``n > 1``."""


class OpenAIBackend:
    """``teacher.backend: openai``. See the module docstring for the behaviour."""

    name = "openai"
    max_samples: int | None = None
    gold_answers = False

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        request_timeout: float = 60.0,
        max_retries: int = 6,
        use_n: bool = True,
        backoff_base_s: float | None = None,
        backoff_max_s: float | None = None,
        seed: int = 0,
    ) -> None:
        try:
            import openai  # noqa: F401
        except ImportError as e:  # pragma: no cover - a hard dependency
            raise TeacherError(f"the openai backend needs the 'openai' package ({e})") from None
        if not model:
            raise TeacherError("teacher.model: the openai backend needs a model name")
        if concurrency < 1:
            raise TeacherError(f"teacher.concurrency must be >= 1, got {concurrency}")
        if max_retries < 0:
            raise TeacherError(f"teacher.max_retries must be >= 0, got {max_retries}")
        # Requests use base_url as given; messages and logs show it without credentials.
        self.shown_url = redact_text(base_url) if base_url else "api.openai.com"
        key = os.environ.get(api_key_env, "").strip()
        if not key:
            if is_loopback_url(base_url):
                key = "EMPTY"
                logger.debug("$%s not set; sending a dummy key to the loopback server %s", api_key_env,
                             self.shown_url)
            else:
                where = self.shown_url if base_url else "the OpenAI API"
                raise TeacherError(
                    f"the openai teacher needs an API key for {where}: set the environment variable "
                    f"{api_key_env} (teacher.api_key_env names the variable; keys never go in config files)"
                )
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self._api_key = key
        self.concurrency = concurrency
        self.request_timeout = float(request_timeout)
        self.max_retries = max_retries
        self.max_n = MAX_N_PER_REQUEST if use_n else 1
        env_base = os.environ.get("PRADA_TEACHER_BACKOFF_BASE_S")
        env_max = os.environ.get("PRADA_TEACHER_BACKOFF_MAX_S")
        self.backoff_base_s = backoff_base_s if backoff_base_s is not None else float(env_base or DEFAULT_BACKOFF_BASE_S)
        self.backoff_max_s = backoff_max_s if backoff_max_s is not None else float(env_max or DEFAULT_BACKOFF_MAX_S)
        self._rng = random.Random(seed)
        self._n_supported = use_n
        self.stats = {"http_requests": 0, "retries": 0, "n_fallbacks": 0}

    # -- public ------------------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request], on_result: OnResult) -> None:
        if not requests:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._generate(requests, on_result))
            return
        # Called from inside an event loop (a notebook): run ours in a thread.
        box: list[BaseException] = []

        def target() -> None:
            try:
                asyncio.run(self._generate(requests, on_result))
            except BaseException as e:  # re-raised in the caller
                box.append(e)

        t = threading.Thread(target=target, name="openai-teacher")
        t.start()
        t.join()
        if box:
            raise box[0]

    def close(self) -> None:
        pass

    # -- the loop ------------------------------------------------------------------------------
    def _make_clients(self) -> list[Any]:
        """``ceil(concurrency / CONNECTIONS_PER_CLIENT)`` SDK clients used round-robin: httpcore's
        pool scans every connection for every request, so one pool of 64+ connections costs more
        CPU per request than several small ones."""
        import openai

        shards = max(1, -(-self.concurrency // CONNECTIONS_PER_CLIENT))
        per = -(-self.concurrency // shards)
        limits = type(openai.DEFAULT_CONNECTION_LIMITS)(max_connections=per, max_keepalive_connections=per)
        timeout = openai.Timeout(self.request_timeout, connect=min(self.request_timeout, 10.0))
        return [
            openai.AsyncOpenAI(
                api_key=self._api_key,
                base_url=self.base_url,
                max_retries=0,  # our own retry loop (below)
                timeout=timeout,
                http_client=openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout),
            )
            for _ in range(shards)
        ]

    async def _generate(self, requests: Sequence[Request], on_result: OnResult) -> None:
        clients = self._make_clients()
        slots = asyncio.Semaphore(self.concurrency)
        backlog = asyncio.Semaphore(self.concurrency * 4)  # bounds the tasks alive at once
        try:
            async with asyncio.TaskGroup() as tg:
                for i, req in enumerate(requests):
                    await backlog.acquire()
                    task = tg.create_task(self._run_request(clients[i % len(clients)], slots, req, on_result))
                    task.add_done_callback(lambda _t: backlog.release())
        except* TeacherError as group:
            raise group.exceptions[0] from None
        finally:
            for client in clients:
                await client.close()

    async def _run_request(self, client: Any, slots: asyncio.Semaphore, req: Request, on_result: OnResult) -> None:
        if req.n > 1 and not self._n_supported:
            for p in range(req.n):
                on_result(await self._call(client, slots, req.subset([p])))
            return
        try:
            result = await self._call(client, slots, req)
        except _NRejected as rejected:
            # HTTP 400 on a multi-sample request: is it n, or the prompt? Ask for one sample.
            first = await self._call(client, slots, req.subset([0]))
            if not first.ok:  # the prompt itself is refused: every sample fails alike
                on_result(Result.failure(req, f"{rejected}; with n=1: {first.error}", attempts=first.attempts,
                                         latency_s=first.latency_s))
                return
            self._disable_n(f"the server rejected n={req.n} ({rejected})")
            on_result(first)
            for p in range(1, req.n):
                on_result(await self._call(client, slots, req.subset([p])))
            return
        if result.ok and len(result.texts) < req.n:
            got = result.texts
            self._disable_n(f"the server returned {len(got)} of {req.n} choices")
            result.request = req.subset(range(len(got)))
            on_result(result)
            for p in range(len(got), req.n):
                on_result(await self._call(client, slots, req.subset([p])))
            return
        on_result(result)

    def _disable_n(self, why: str) -> None:
        if self._n_supported:
            logger.warning("openai teacher: %s; falling back to one sample per request", why)
        self._n_supported = False
        self.stats["n_fallbacks"] += 1

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        cap = min(self.backoff_max_s, self.backoff_base_s * (2 ** (attempt - 1)))
        return self._rng.uniform(0.0, cap)

    async def _call(self, client: Any, slots: asyncio.Semaphore, req: Request) -> Result:
        """One request with retries. Returns a Result (maybe an error one); raises only for fatal
        problems (``TeacherError``) and ``_NRejected``."""
        import openai

        start = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                async with slots:
                    self.stats["http_requests"] += 1
                    data = await self._send(client, req)
                texts, reasons, usage = self._parse(data, req)
                return Result(
                    request=req,
                    texts=texts,
                    finish_reasons=reasons,
                    usage=usage,
                    attempts=attempt,
                    latency_s=time.perf_counter() - start,
                )
            except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
                raise TeacherError(
                    f"the server at {self.shown_url} rejected the API key from "
                    f"${self.api_key_env} (HTTP {e.status_code}): {_short(e)}"
                ) from None
            except openai.NotFoundError as e:
                raise TeacherError(
                    f"teacher.model '{self.model}' or its endpoint is unknown to {self.shown_url} "
                    f"(HTTP 404): {_short(e)}"
                ) from None
            except openai.APIStatusError as e:
                status = e.status_code
                if status == 400 and req.n > 1:
                    raise _NRejected(f"HTTP 400: {_short(e)}") from None
                if status not in RETRY_STATUS and status < 500:
                    return Result.failure(req, f"HTTP {status}: {_short(e)}", attempts=attempt,
                                          latency_s=time.perf_counter() - start)
                error = f"HTTP {status}: {_short(e)}"
                retry_after = parse_retry_after(e.response.headers)
            except openai.APITimeoutError:
                error = f"timeout after {self.request_timeout:g}s"
            except openai.APIConnectionError as e:
                error = f"connection error: {e.__cause__ or e}"
            except (MalformedResponse, ValueError, openai.APIResponseValidationError) as e:
                error = f"malformed response: {str(e)[:200]}"
            if attempt > self.max_retries:
                logger.warning("openai teacher: giving up on %s after %d attempts: %s", req.example.id, attempt, error)
                return Result.failure(req, f"{error} (gave up after {attempt} attempts)", attempts=attempt,
                                      latency_s=time.perf_counter() - start)
            self.stats["retries"] += 1
            delay = self._backoff(attempt, retry_after)
            logger.debug("openai teacher: %s attempt %d failed (%s); retrying in %.3fs", req.example.id, attempt, error, delay)
            await asyncio.sleep(delay)

    async def _send(self, client: Any, req: Request) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": req.sampling.max_tokens,
            "temperature": req.sampling.temperature,
            "top_p": req.sampling.top_p,
        }
        if req.n > 1:
            kwargs["n"] = req.n
        if not req.sampling.greedy:
            kwargs["seed"] = req.seeds[0]
        if req.sampling.stop:
            kwargs["stop"] = list(req.sampling.stop)
        if req.chat:
            raw = await client.chat.completions.with_raw_response.create(messages=list(req.prompt), **kwargs)
        else:
            raw = await client.completions.with_raw_response.create(prompt=req.prompt, **kwargs)
        # Parse the JSON ourselves: cheaper than the SDK's models, and malformed bodies are ours to judge.
        return json.loads(raw.http_response.content)

    def _parse(self, data: Any, req: Request) -> tuple[list[str], list[str | None], Usage]:
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
            raise MalformedResponse(f"no 'choices' list in {str(data)[:120]!r}")
        by_index: dict[int, tuple[str, str | None]] = {}
        for pos, choice in enumerate(data["choices"]):
            if not isinstance(choice, dict):
                raise MalformedResponse(f"choice {pos} is not an object")
            if req.chat:
                message = choice.get("message")
                text = message.get("content") if isinstance(message, dict) else None
                if text is None and isinstance(message, dict):
                    text = ""  # a refusal or tool call: an empty completion, extraction finds no answer
            else:
                text = choice.get("text")
            if not isinstance(text, str):
                raise MalformedResponse(f"choice {pos} has no text")
            index = choice.get("index", pos)
            if not isinstance(index, int) or not 0 <= index < req.n:
                index = pos
            by_index.setdefault(index, (text, choice.get("finish_reason")))
        # Keep the leading run of choices 0..k-1 (the fall-back asks for the rest one by one).
        texts: list[str] = []
        reasons: list[str | None] = []
        for i in range(req.n):
            if i not in by_index:
                break
            texts.append(by_index[i][0])
            reasons.append(by_index[i][1])
        if not texts:
            raise MalformedResponse("no usable choice")
        raw_usage = data.get("usage")
        u = raw_usage if isinstance(raw_usage, dict) else {}
        usage = Usage(_int(u.get("prompt_tokens")), _int(u.get("completion_tokens")))
        return texts, reasons, usage


def _int(v: Any) -> int:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0


def _short(e: Exception) -> str:
    """The server's error message when it sent one, else the exception text (trimmed)."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        inner = error if isinstance(error, dict) else body
        if inner.get("message"):
            return str(inner["message"])[:300]
    return str(e)[:300]
