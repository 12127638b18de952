#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Smart-HTTP git server for the tests (Python 3 standard library only): `git http-backend`
as CGI behind a threaded HTTP/1.1 server on 127.0.0.1, with optional basic auth, TLS and
misbehaviour modes. Started and stopped by tests/integration/servers.py (GitHttpServer).

  git-http-server.py --root DIR --port-file FILE [--log FILE] [--json-log FILE]
                     [--user U --password-env VAR] [--cert C --key K]
                     [--mode MODE] [--mode-file FILE] [--slow-delay SECONDS]

It binds port 0 on 127.0.0.1 (or --port), listens, and only then writes the port number to
--port-file (atomically), so a reader of that file can connect at once.

Every request is logged to --log as one line "METHOD PATH STATUS" (PATH with its query,
STATUS "-" when the request is never answered), and with more detail as one JSON object per
line to --json-log. Both are written before the response is sent.

Modes (--mode, overridden by the contents of --mode-file, which is re-read on every request
so a test can change the mode of a running server):
  normal       answer every request
  500          answer every request with 500 Internal Server Error
  stall        read the request, never answer (the connection stays open)
  slow         send every response, status line and headers included, one byte at a time
               with --slow-delay seconds between bytes
  500-post, stall-post, slow-post
               the same, but only for POST requests (the GET of info/refs is answered
               normally, so the client gets as far as negotiating or downloading)
  stall-body   answer POST requests with their status line, headers and the first half of
               the body, then never send the rest (a transfer that stalls midway)

Request bodies: Content-Length and chunked transfer coding are read; a gzip
Content-Encoding (git sends it for larger negotiation requests) is passed through to
git-http-backend as HTTP_CONTENT_ENCODING, which inflates it itself.
"""

import argparse
import base64
import hmac
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

BACKEND = "/usr/lib/git-core/git-http-backend"
MODES = ("normal", "500", "stall", "slow", "500-post", "stall-post", "slow-post", "stall-body")
FOREVER = threading.Event()  # never set: stalled handlers wait on it until the server dies


def read_chunked(rfile) -> bytes:
    out = bytearray()
    while True:
        line = rfile.readline(65537)
        if not line:
            raise ConnectionError("connection closed inside a chunked body")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(out)
        out += rfile.read(size)
        rfile.readline(3)  # CRLF after the chunk


def parse_cgi_output(out: bytes):
    """Status, headers and body of a CGI response (headers end at the first empty line)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = out.find(sep)
        if i >= 0:
            head, body = out[:i], out[i + len(sep):]
            break
    else:
        return 502, [("Content-Type", "text/plain")], b"git-http-backend printed no headers\n"
    status, reason, headers = 200, None, []
    for line in head.decode("latin-1").splitlines():
        k, _, v = line.partition(":")
        k, v = k.strip(), v.strip()
        if k.lower() == "status":
            code, _, reason = v.partition(" ")
            status = int(code)
        elif k and k.lower() not in ("content-length", "connection", "transfer-encoding"):
            headers.append((k, v))
    return status, headers, body


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, help="GIT_PROJECT_ROOT")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--json-log")
    ap.add_argument("--user")
    ap.add_argument("--password", help="the password (prefer --password-env)")
    ap.add_argument("--password-env", help="name of the environment variable holding the password")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--mode", default="normal", choices=MODES)
    ap.add_argument("--mode-file")
    ap.add_argument("--slow-delay", type=float, default=0.2)
    ap.add_argument("--backend", default=BACKEND)
    args = ap.parse_args()

    password = args.password
    if args.password_env:
        password = os.environ.get(args.password_env, "")
    expected_auth = None
    if args.user is not None:
        expected_auth = base64.b64encode(f"{args.user}:{password or ''}".encode()).decode()

    log_lock = threading.Lock()
    log_files = {}
    for name in ("log", "json_log"):
        path = getattr(args, name)
        if path:
            log_files[name] = open(path, "a", buffering=1)

    base_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": os.path.abspath(args.root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_SOFTWARE": "atticd-test-git-http-server",
        "REMOTE_ADDR": "127.0.0.1",
        "HOME": os.environ.get("HOME", "/"),
    }
    for k in ("GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL", "GIT_TRACE", "GIT_TRACE_PACKET"):
        if k in os.environ:
            base_env[k] = os.environ[k]

    def current_mode() -> str:
        if args.mode_file:
            try:
                with open(args.mode_file) as f:
                    m = f.read().strip()
                if m in MODES:
                    return m
            except OSError:
                pass
        return args.mode

    tls_ctx = None
    if args.cert:
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.load_cert_chain(args.cert, args.key)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "atticd-test-git-http"
        sys_version = ""

        def setup(self):
            super().setup()
            if tls_ctx is not None:
                self.request.settimeout(30)
                self.request.do_handshake()  # in this thread, never in the accept loop
                self.request.settimeout(None)

        def handle(self):
            try:
                super().handle()
            except (ConnectionError, ssl.SSLError, socket.timeout, OSError) as e:
                sys.stderr.write(f"connection from {self.client_address}: {e!r}\n")

        def log_message(self, fmt, *a):
            sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % a))

        def record(self, status, **extra):
            entry = {"time": time.time(), "method": self.command, "path": self.path,
                     "status": status, **extra}
            with log_lock:
                if "log" in log_files:
                    log_files["log"].write(f"{self.command} {self.path} {status if status else '-'}\n")
                if "json_log" in log_files:
                    log_files["json_log"].write(json.dumps(entry) + "\n")

        def read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return read_chunked(self.rfile)
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n > 0 else b""

        def authorized(self):
            if expected_auth is None:
                return True
            h = self.headers.get("Authorization", "")
            scheme, _, cred = h.partition(" ")
            return scheme.lower() == "basic" and hmac.compare_digest(cred.strip(), expected_auth)

        def raw_response(self, status, headers, body, reason=None) -> bytes:
            reason = reason or self.responses.get(status, ("",))[0]
            lines = [f"HTTP/1.1 {status} {reason}",
                     f"Server: {self.server_version}",
                     f"Date: {self.date_time_string()}"]
            lines += [f"{k}: {v}" for k, v in headers]
            lines.append(f"Content-Length: {len(body)}")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            return head + (b"" if self.command == "HEAD" else body)

        def send_all(self, data: bytes, slow: bool = False):
            if not slow:
                self.wfile.write(data)  # one write: no Nagle/delayed-ACK stalls
                return
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(args.slow_delay)

        def handle_any(self):
            started = time.monotonic()
            body = self.read_body()
            mode = current_mode()
            post = self.command == "POST"
            info = {"user": None, "bytes_in": len(body),
                    "content_encoding": self.headers.get("Content-Encoding"),
                    "transfer_encoding": self.headers.get("Transfer-Encoding"),
                    "git_protocol": self.headers.get("Git-Protocol"), "mode": mode}

            if mode == "stall" or (mode == "stall-post" and post):
                self.record(None, **info)
                FOREVER.wait()
                return
            if mode == "500" or (mode == "500-post" and post):
                self.record(500, **info)
                self.send_all(self.raw_response(500, [("Content-Type", "text/plain")], b"broken on purpose\n"))
                return
            if not self.authorized():
                self.record(401, **info)
                self.send_all(self.raw_response(401, [("Content-Type", "text/plain"),
                                                      ("WWW-Authenticate", 'Basic realm="git"')],
                                                b"authentication required\n"))
                return
            info["user"] = args.user

            path, _, query = self.path.partition("?")
            env = dict(base_env)
            env.update({
                "REQUEST_METHOD": self.command,
                "PATH_INFO": urllib.parse.unquote(path),
                "QUERY_STRING": query,
                "REQUEST_URI": self.path,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "SERVER_PORT": str(self.server.server_address[1]),
            })
            for k, v in self.headers.items():
                key = "HTTP_" + k.upper().replace("-", "_")
                if key not in ("HTTP_AUTHORIZATION", "HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE",
                               "HTTP_TRANSFER_ENCODING"):
                    env[key] = v
            if args.user is not None:
                env["REMOTE_USER"] = args.user
                env["AUTH_TYPE"] = "Basic"
            if tls_ctx is not None:
                env["HTTPS"] = "on"
            cgi = subprocess.run([args.backend], input=body, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            if cgi.stderr:
                sys.stderr.write(cgi.stderr.decode(errors="replace"))
            status, headers, payload = parse_cgi_output(cgi.stdout)
            info.update(bytes_out=len(payload), cgi_exit=cgi.returncode,
                        cgi_ms=round((time.monotonic() - started) * 1000, 1))
            self.record(status, **info)
            data = self.raw_response(status, headers, payload)
            if mode == "stall-body" and post:
                self.send_all(data[:len(data) - len(payload) // 2 if payload else len(data)])
                FOREVER.wait()
                return
            self.send_all(data, slow=(mode == "slow" or (mode == "slow-post" and post)))

        do_GET = do_POST = do_HEAD = handle_any

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 64

        def get_request(self):
            sock, addr = self.socket.accept()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls_ctx is not None:
                sock = tls_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            return sock, addr

        def handle_error(self, request, client_address):
            sys.stderr.write(f"error serving {client_address}: {sys.exc_info()[1]!r}\n")

    server = Server(("127.0.0.1", args.port), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{server.server_address[1]}\n")
    os.rename(tmp, args.port_file)
    sys.stderr.write(f"listening on 127.0.0.1:{server.server_address[1]} "
                     f"({'https' if tls_ctx else 'http'}, mode {args.mode}, root {args.root})\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=3600)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
