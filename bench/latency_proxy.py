"""A reverse proxy on 127.0.0.1 that puts S3-like latency in front of a local server (moto's): every request waits a
random 20-50 ms (uniform, seeded) before it is forwarded, then goes on unchanged (method, path, headers with the Host
header as signed, body) and the answer is streamed back. Standard library only: a threaded HTTP/1.1 server, with
keep-alive, and one upstream connection per client connection.

    python bench/latency_proxy.py --upstream http://127.0.0.1:PORT [--port 0] [--min-ms 20] [--max-ms 50] [--seed 1]

prints the port it listens on, one line, once it does. GET /__latency_proxy__/stats (answered by the proxy itself,
never forwarded: no bucket has such a name) is {"requests": N, "connections": N, "delaySeconds": S}: the requests
forwarded, the client connections accepted and the sum of the delays so far.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

STATS_PATH = "/__latency_proxy__/stats"
CHUNK = 1 << 16
# hop-by-hop headers (RFC 9110 7.6.1): about one connection, never forwarded; the body's framing is set again
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade", "expect"}  # fmt: skip


class LatencyProxy(ThreadingHTTPServer):
    """The server: where to forward, the latency band and its random draws, and the counts."""

    daemon_threads = True
    request_queue_size = 256  # socketserver's default backlog of 5 drops connections a thread pool opens at once

    def __init__(self, upstream: str, port: int = 0, min_ms: float = 20, max_ms: float = 50, seed: int = 1) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be http://HOST:PORT, not {upstream}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.band = (min_ms / 1000, max_ms / 1000)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.requests = self.connections = 0
        self.delay_seconds = 0.0
        super().__init__(("127.0.0.1", port), ProxyHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def draw(self) -> float:
        """The next delay, counted with its request (one generator for every thread: the draws stay seeded)."""
        with self.lock:
            delay = self.rng.uniform(*self.band)
            self.requests += 1
            self.delay_seconds += delay
            return delay

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is no error of the proxy's; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": self.requests, "connections": self.connections, "delaySeconds": self.delay_seconds}


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; an "Expect: 100-continue" is answered here before the body is read
    server: LatencyProxy

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.upstream: http.client.HTTPConnection | None = None
        with self.server.lock:
            self.server.connections += 1

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self.upstream is not None:
                self.upstream.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def request_body(self) -> bytes:
        """The whole request body: by Content-Length, or its chunks put together (sent on with a length)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields: none that S3 needs from a proxy
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def forward(self) -> None:
        if self.command == "GET" and self.path == STATS_PATH:
            self.answer_stats()
            return
        body = self.request_body()
        time.sleep(self.server.draw())
        try:
            response = self.send_upstream(body)
        except OSError as exc:
            self.send_error(502, f"upstream: {exc}")
            return
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        no_body = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
        chunked = not no_body and response.getheader("Content-Length") is None
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if self.close_connection:  # the client asked (the upstream connection is reopened by itself when it closes)
            self.send_header("Connection", "close")
        self.end_headers()
        while not no_body and (data := response.read1(CHUNK)):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        response.close()

    # every method the same way
    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = forward

    def send_upstream(self, body: bytes) -> http.client.HTTPResponse:
        """The request on this connection's upstream connection (opened again once if the server closed it)."""
        for attempt in (1, 2):
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
            try:
                self.upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        self.upstream.putheader(name, value)  # Host among them, as the client signed it
                if body or self.command in ("PUT", "POST", "PATCH"):
                    self.upstream.putheader("Content-Length", str(len(body)))
                self.upstream.endheaders(body or None)
                return self.upstream.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.upstream.close()
                self.upstream = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def answer_stats(self) -> None:
        data = json.dumps(self.server.stats()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--upstream", required=True, help="http://HOST:PORT of the server to forward to")
    parser.add_argument("--port", type=int, default=0, help="the port to listen on (0: any free one)")
    parser.add_argument("--min-ms", type=float, default=20)
    parser.add_argument("--max-ms", type=float, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    server = LatencyProxy(args.upstream, args.port, args.min_ms, args.max_ms, args.seed)
    print(server.port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
