"""A closed-loop HTTP load generator: N connections, each sends a request, waits, sends the next.

asyncio over raw keep-alive sockets, so one Python process drives hundreds of
connections at several thousand requests a second (its ceiling is measured
against a trivial server by ``serve_trivial`` and reported beside results).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    concurrency: int
    duration_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def requests_per_s(self) -> float:
        return len(self.latencies_ms) / self.duration_s

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict:
        return {
            "concurrency": self.concurrency,
            "requests": len(self.latencies_ms),
            "errors": self.errors,
            "requests_per_s": round(self.requests_per_s, 1),
            "p50_ms": round(self.percentile(0.5), 2),
            "p90_ms": round(self.percentile(0.9), 2),
            "p99_ms": round(self.percentile(0.99), 2),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 2),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 2) if self.latencies_ms else None,
        }


def build_request(path: str, body: bytes, content_type: str = "application/json") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length or chunked); return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    if b"transfer-encoding: chunked" in lowered:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return status
    start = lowered.find(b"content-length:")
    length = int(lowered[start + 15:lowered.find(b"\r\n", start)]) if start >= 0 else 0
    await reader.readexactly(length)
    return status


async def _client(port: int, request: bytes, stop_at: float, warm_until: float, result: LoadResult) -> None:
    reader, writer = None, None
    while time.monotonic() < stop_at:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.monotonic()
            writer.write(request)
            status = await _read_response(reader)
            done = time.monotonic()
            if done >= warm_until and done < stop_at:
                if status == 200:
                    result.latencies_ms.append((done - started) * 1000)
                else:
                    result.errors += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            if time.monotonic() >= warm_until:
                result.errors += 1
            if writer is not None:
                writer.close()
            reader, writer = None, None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def _run(port: int, request: bytes, concurrency: int, duration_s: float, warmup_s: float) -> LoadResult:
    now = time.monotonic()
    warm_until, stop_at = now + warmup_s, now + warmup_s + duration_s
    result = LoadResult(concurrency, duration_s)
    await asyncio.gather(*(_client(port, request, stop_at, warm_until, result) for _ in range(concurrency)))
    return result


def run_load(port: int, request: bytes, concurrency: int, duration_s: float, warmup_s: float = 2.0) -> LoadResult:
    """Closed loop for warmup_s + duration_s; only responses finishing after the warm-up count."""
    return asyncio.run(_run(port, request, concurrency, duration_s, warmup_s))


async def _trivial_server(port: int, ready: asyncio.Event, stop_after_s: float) -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lowered = head.lower()
                start = lowered.find(b"content-length:")
                await reader.readexactly(int(lowered[start + 15:lowered.find(b"\r\n", start)]))
                writer.write(response)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    ready.set()
    async with server:
        await asyncio.sleep(stop_after_s)


def serve_trivial(port: int, stop_after_s: float) -> None:
    """An asyncio server answering 200 at once: the load generator's ceiling is measured against it."""

    async def main() -> None:
        await _trivial_server(port, asyncio.Event(), stop_after_s)

    asyncio.run(main())
