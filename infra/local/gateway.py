"""An HTTP API Gateway stand-in: routes from template.yaml's HttpApi events, API Gateway's route
priority, payload format 2.0 events, CORS from the API's CorsConfiguration, the IAM check of the
service writer's routes (SigV4 with the local credentials: infra/local/sigv4.py), and (AuthMode=jwt) a
JWT check of issuer, audience and expiry. The JWT signature is NOT verified here: the local stack is a
development tool, not a security boundary; in AWS the JWT authorizer verifies it against the issuer's keys."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from infra.local import sigv4
from infra.local.runtime import FunctionError, Runtime
from infra.template import ROOT, Route, Stack

# The demo chat page (web/) and the client it runs on, served at / by the local stack only: in AWS the
# API serves /api/v1 and nothing else.
PAGE_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # uploads go to the emulator's S3, another loopback port
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' http://127.0.0.1:*; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}


def page_file(path: str) -> Path | None:
    """The file of the demo page that a GET of `path` serves, or None: `/` is web/index.html, `/<name>`
    a file directly in web/, `/chatvault.js` the client (clients/js). Nothing else is reachable."""
    if path == "/":
        return ROOT / "web" / "index.html"
    if path == "/chatvault.js":
        return ROOT / "clients" / "js" / "chatvault.js"
    name = path[1:]
    if "/" in name or name.startswith(".") or Path(name).suffix not in PAGE_TYPES:
        return None
    candidate = ROOT / "web" / name
    return candidate if candidate.is_file() else None


def match_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route API Gateway would pick (routes sorted by Route.priority) and its path parameters."""
    for route in routes:
        if route.method not in (method, "ANY"):
            continue
        found = route.pattern.match(path)
        if found:
            return route, found.groupdict()
    return None


class Gateway:
    def __init__(self, stack: Stack, runtime: Runtime) -> None:
        self.stack = stack
        self.runtime = runtime
        self.routes = sorted(stack.routes(), key=lambda r: r.priority)
        self.stream_routes = sorted(stack.stream_routes(), key=lambda r: r.priority)
        self.cors = stack.cors()
        self.issuer = stack.parameters.get("JwtIssuer") or ""
        self.audience = stack.parameters.get("JwtAudience") or ""

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        return match_route(self.routes, method, path)

    def claims(self, authorization: str | None) -> dict[str, Any] | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        try:
            payload = authorization.split(" ", 1)[1].split(".")[1]
            claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError):
            return None
        audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
        if self.issuer and claims.get("iss") != self.issuer:
            return None
        if self.audience and self.audience not in audiences and claims.get("client_id") != self.audience:
            return None
        if "exp" in claims and float(claims["exp"]) < time.time():
            return None
        return claims

    def cors_headers(self, origin: str | None) -> dict[str, str]:
        allowed = self.cors.get("AllowOrigins") or []
        if not origin or not (origin in allowed or "*" in allowed):
            return {}
        headers = {"Access-Control-Allow-Origin": "*" if "*" in allowed else origin}
        if self.cors.get("ExposeHeaders"):
            headers["Access-Control-Expose-Headers"] = ",".join(self.cors["ExposeHeaders"])
        return headers

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """The answer: status, headers, and the body (bytes, or for a streaming route an iterator of
        chunks)."""
        url = urlsplit(raw_path)
        origin = headers.get("origin")
        if method == "OPTIONS" and origin and headers.get("access-control-request-method"):
            cors = self.cors_headers(origin)
            if cors:
                cors["Access-Control-Allow-Methods"] = ",".join(self.cors.get("AllowMethods", []))
                cors["Access-Control-Allow-Headers"] = ",".join(self.cors.get("AllowHeaders", []))
                cors["Access-Control-Max-Age"] = str(self.cors.get("MaxAge", 0))
            return 204, cors, b""
        page = page_file(url.path) if method in ("GET", "HEAD") else None
        if page is not None:  # before the routes: the fallback route would answer 404
            return 200, {"Content-Type": PAGE_TYPES[page.suffix], **PAGE_HEADERS}, page.read_bytes()
        if "text/event-stream" in headers.get("accept", "").lower():
            streamed = match_route(self.stream_routes, method, url.path)
            if streamed is not None:  # the streaming API's route: answered as it is written
                return self.stream(streamed[0], method, url, headers, body)
        found = self.match(method, url.path)
        if found is None:
            return 404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}'
        route, params = found
        claims = iam = None
        if route.jwt:
            claims = self.claims(headers.get("authorization"))
            if claims is None:
                return 401, {"Content-Type": "application/json"}, b'{"message":"Unauthorized"}'
        if route.iam:
            iam = sigv4.verify(method, f"http://{headers.get('host', '')}{raw_path}", headers, body)
            if iam is None:
                return 403, {"Content-Type": "application/json"}, b'{"message":"Forbidden"}'
        event = self.event(method, url.path, url.query, headers, body, route, params, claims, iam)
        try:
            result = self.runtime.invoke(route.function, event)
        except FunctionError as exc:
            print(f"[gateway] {route.function}: {exc}", flush=True)
            return 500, {"Content-Type": "application/json"}, b'{"message":"Internal Server Error"}'
        status, out_headers, out_body = self.response(result)
        return status, {**out_headers, **self.cors_headers(origin)}, out_body

    def stream(
        self, route: Route, method: str, url: Any, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """A streaming route (the REST API's, on AWS): the function's head, then its chunks as they come
        (an iterator the server writes chunk by chunk, and runs to its end even if the client left)."""
        request = {
            "method": method,
            "path": url.path,
            "query": dict(parse_qsl(url.query, keep_blank_values=True)),
            "headers": headers,
            "body": body,
            "source_ip": "127.0.0.1",
            "request_id": str(uuid.uuid4()),
        }
        answer = self.runtime.stream(route.function, request)
        try:
            kind, (status, out_headers) = next(answer)
        except (FunctionError, StopIteration) as exc:
            print(f"[gateway] {route.function}: {exc}", flush=True)
            return 500, {"Content-Type": "application/json"}, b'{"message":"Internal Server Error"}'
        assert kind == "head"
        return status, out_headers, (chunk for _, chunk in answer)

    @staticmethod
    def event(
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        route: Route,
        params: dict[str, str],
        claims: dict[str, Any] | None,
        iam: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        pairs = parse_qsl(query, keep_blank_values=True)
        qs: dict[str, str] = {}
        for key, value in pairs:
            qs[key] = f"{qs[key]},{value}" if key in qs else value
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        route_key = f"{route.method} {route.path}"
        context: dict[str, Any] = {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        }
        if claims is not None:
            context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        if iam is not None:
            context["authorizer"] = {"iam": iam}
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": context,
            "isBase64Encoded": encoded,
        }
        if qs:
            event["queryStringParameters"] = qs
        if params:
            event["pathParameters"] = params
        if body:
            event["body"] = text
        if "cookie" in headers:
            event["cookies"] = [c.strip() for c in headers["cookie"].split(";")]
        return event

    @staticmethod
    def response(result: Any) -> tuple[int, dict[str, str], bytes]:
        if not isinstance(result, dict) or "statusCode" not in result:
            return 200, {"Content-Type": "application/json"}, json.dumps(result).encode()
        headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = ",".join(str(v) for v in values)
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        return int(result["statusCode"]), headers, body


def serve(gateway: Gateway, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers: dict[str, str] = {}
            for key, value in self.headers.items():
                k = key.lower()
                headers[k] = f"{headers[k]},{value}" if k in headers else value
            status, out_headers, out_body = gateway.handle(self.command, self.path, headers, body)
            self.send_response(status)
            for key, value in out_headers.items():
                if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(key, value)
            if not isinstance(out_body, bytes):  # streamed: each chunk as the function writes it
                try:
                    if status in (204, 304):
                        self.send_header("Content-Length", "0")
                    else:
                        self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                except OSError:  # the client left before the head: the function goes on all the same
                    for _ in out_body:
                        pass
                    self.close_connection = True
                    return
                self._chunks(out_body, framed=status not in (204, 304))
                return
            self.send_header("Content-Length", str(len(out_body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(out_body)

        def _chunks(self, chunks: Any, *, framed: bool = True) -> None:
            """Write and flush each chunk; a client that went away stops the writing, not the function:
            the rest is read to its end (the reply is stored when it is complete)."""
            gone = not framed  # no body at all for a 204
            for chunk in chunks:
                if gone or not chunk:
                    continue
                try:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                except OSError:
                    gone = True
            if not gone:
                try:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except OSError:
                    pass
            self.close_connection = True

        def __getattr__(self, name: str) -> Any:
            # any method at all (QUERY, TRACE, made-up ones) reaches the routes, as at API Gateway
            if name.startswith("do_"):
                return self._any
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:
            print(
                f"[gateway] {self.command} {urlsplit(self.path).path} -> {args[1] if len(args) > 1 else ''}",
                flush=True,
            )

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server
