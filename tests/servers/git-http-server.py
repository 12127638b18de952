#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Smart-HTTP git server for the tests (Python 3 standard library only): `git http-backend`
as CGI behind a threaded HTTP/1.1 server on 127.0.0.1, with optional basic auth, TLS and
misbehaviour modes. Started and stopped by tests/integration/servers.py (GitHttpServer).

  python3 -S git-http-server.py --root DIR --port-file FILE [--port N]
      [--log FILE] [--json-log FILE] [--user U (--password P | --password-env VAR)]
      [--cert C --key K] [--mode MODE] [--mode-file FILE] [--slow-delay SECONDS]
      [--backend /usr/lib/git-core/git-http-backend] [--bind ADDR] [--redirect-to URL]

(-S: the script needs only the standard library, and skipping site-packages saves start-up
time. It deliberately avoids http.server and argparse for the same reason: it listens about
50 ms after exec.)

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
  close-body   the same, but close the connection after the first half (a cut transfer)
  endless-post answer POST requests with a pack that never ends: valid side-band pkt-lines
               carrying a pack header that announces ten million objects and then blob after
               blob, compressed, for ever (endless data)
  garbage-refs answer GET info/refs with 200, the right content type and garbage
  redirect     answer every (authorized) request with 302 to --redirect-to followed by the
               request's path and query: a forge that sends its clients to another host

--bind ADDR (default 127.0.0.1): the loopback address to listen on (127.0.0.2 makes a second
host). The JSON log records the Authorization header each request carried ("authorization").

Request bodies: Content-Length and chunked transfer coding are read; a gzip
Content-Encoding (git sends it for larger negotiation requests) is passed through to
git-http-backend as HTTP_CONTENT_ENCODING, which inflates it itself.
"""

import base64
import hmac
import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse

BACKEND = "/usr/lib/git-core/git-http-backend"
MODES = ("normal", "500", "stall", "slow", "500-post", "stall-post", "slow-post", "stall-body", "close-body",
         "endless-post", "garbage-refs", "redirect")
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


REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable"}
OPTIONS = {"--root": None, "--port-file": None, "--port": "0", "--log": None, "--json-log": None,
           "--user": None, "--password": None, "--password-env": None, "--cert": None, "--key": None,
           "--mode": "normal", "--mode-file": None, "--slow-delay": "0.2", "--backend": BACKEND,
           "--bind": "127.0.0.1", "--redirect-to": None}


def parse_args(argv):
    """--option value pairs (argparse alone costs more start-up time than this whole server)."""
    opts = dict(OPTIONS)
    it = iter(argv)
    for a in it:
        if a in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        if a not in opts:
            sys.exit(f"git-http-server: unknown option {a}")
        try:
            opts[a] = next(it)
        except StopIteration:
            sys.exit(f"git-http-server: {a} needs a value")
    for required in ("--root", "--port-file"):
        if not opts[required]:
            sys.exit(f"git-http-server: {required} is required")
    if opts["--mode"] not in MODES:
        sys.exit(f"git-http-server: --mode must be one of {', '.join(MODES)}")
    return {k[2:].replace("-", "_"): v for k, v in opts.items()}


class BadRequest(Exception):
    pass


def http_date() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())


def main() -> int:
    args = parse_args(sys.argv[1:])
    slow_delay = float(args["slow_delay"])
    password = args["password"]
    if args["password_env"]:
        password = os.environ.get(args["password_env"], "")
    expected_auth = None
    if args["user"] is not None:
        expected_auth = base64.b64encode(f"{args['user']}:{password or ''}".encode()).decode()

    log_lock = threading.Lock()
    plain_log = open(args["log"], "a", buffering=1) if args["log"] else None
    json_log = open(args["json_log"], "a", buffering=1) if args["json_log"] else None

    base_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": os.path.abspath(args["root"]),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_SOFTWARE": "atticd-test-git-http-server",
        "REMOTE_ADDR": "127.0.0.1",
        "HOME": os.environ.get("HOME", "/"),
    }
    for k in ("GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL", "GIT_TRACE", "GIT_TRACE_PACKET", "LANG", "LC_ALL"):
        if k in os.environ:
            base_env[k] = os.environ[k]

    def current_mode() -> str:
        if args["mode_file"]:
            try:
                with open(args["mode_file"]) as f:
                    m = f.read().strip()
                if m in MODES:
                    return m
            except OSError:
                pass
        return args["mode"]

    tls_ctx = None
    if args["cert"]:
        import ssl  # only when needed: it is the slowest import
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.load_cert_chain(args["cert"], args["key"])

    class Handler(socketserver.StreamRequestHandler):
        rbufsize = 65536
        wbufsize = 0

        def setup(self):
            if tls_ctx is not None:
                self.request.settimeout(30)
                self.request.do_handshake()  # here, in the connection's thread
                self.request.settimeout(None)
            super().setup()

        def handle(self):
            try:
                while self.handle_one():
                    pass
            except (BadRequest, ValueError) as e:
                sys.stderr.write(f"{self.client_address}: bad request: {e}\n")
            except OSError as e:  # resets, TLS errors (ssl.SSLError is an OSError)
                sys.stderr.write(f"{self.client_address}: {e!r}\n")

        # -- one request ------------------------------------------------------------------

        def handle_one(self) -> bool:
            line = self.rfile.readline(65537)
            if not line:
                return False
            if line in (b"\r\n", b"\n"):
                return True  # tolerated between requests
            parts = line.decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                raise BadRequest(repr(line))
            self.command, self.path, self.version = parts
            if "://" in self.path.partition("?")[0]:
                # The absolute form, which a server must accept (RFC 9112 3.2.2): libgit2 sends
                # it to the server itself when http_proxy is set for a plain http:// remote.
                u = urllib.parse.urlsplit(self.path)
                self.path = (u.path or "/") + (f"?{u.query}" if u.query else "")
                self.absolute_form = True
            else:
                self.absolute_form = False
            self.headers = []
            while True:
                h = self.rfile.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                self.headers.append((k.strip(), v.strip()))
            conn = self.header("Connection").lower()
            keep_alive = ("close" not in conn) if self.version == "HTTP/1.1" else ("keep-alive" in conn)
            if self.header("Expect").lower() == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.respond(self.read_body())
            return keep_alive

        def header(self, name: str, default: str = "") -> str:
            name = name.lower()
            for k, v in self.headers:
                if k.lower() == name:
                    return v
            return default

        def read_body(self) -> bytes:
            if "chunked" in self.header("Transfer-Encoding").lower():
                return read_chunked(self.rfile)
            n = int(self.header("Content-Length") or 0)
            body = self.rfile.read(n) if n > 0 else b""
            if len(body) != n:
                raise BadRequest("body shorter than Content-Length")
            return body

        def record(self, status, **extra):
            entry = {"time": time.time(), "method": self.command, "path": self.path,
                     "status": status, **extra}
            with log_lock:
                if plain_log:
                    plain_log.write(f"{self.command} {self.path} {status if status else '-'}\n")
                if json_log:
                    json_log.write(json.dumps(entry) + "\n")

        def authorized(self) -> bool:
            if expected_auth is None:
                return True
            scheme, _, cred = self.header("Authorization").partition(" ")
            return scheme.lower() == "basic" and hmac.compare_digest(cred.strip().encode(),
                                                                     expected_auth.encode())

        def response(self, status, headers, body, reason=None) -> bytes:
            lines = [f"HTTP/1.1 {status} {reason or REASONS.get(status, 'Status')}",
                     "Server: atticd-test-git-http", f"Date: {http_date()}"]
            lines += [f"{k}: {v}" for k, v in headers]
            lines.append(f"Content-Length: {len(body)}")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            return head + (b"" if self.command == "HEAD" else body)

        def send(self, data: bytes, slow: bool = False):
            if not slow:
                self.wfile.write(data)  # one write: no Nagle/delayed-ACK pauses
                return
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                time.sleep(slow_delay)

        def send_endless_pack(self):
            """Side-band-64k pkt-lines: NAK, then band 1 carrying PACK v2 with 2^32-1 objects,
            each a 64 KiB blob of random bytes. Until the client hangs up."""
            import zlib

            def pkt(data: bytes) -> bytes:
                return b"%04x" % (len(data) + 4) + data

            head = [("Content-Type", "application/x-git-upload-pack-result"), ("Cache-Control", "no-cache"),
                    ("Connection", "close")]
            lines = [f"HTTP/1.1 200 OK", "Server: atticd-test-git-http", f"Date: {http_date()}"]
            lines += [f"{k}: {v}" for k, v in head]
            try:
                self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                self.wfile.write(pkt(b"NAK\n"))
                # A plausible count: 2^32-1 makes libgit2 fail at once allocating its index.
                self.wfile.write(pkt(b"\x01PACK\x00\x00\x00\x02" + (10_000_000).to_bytes(4, "big")))
                size = 65536
                while True:
                    # Object header: type blob (3), size in the varint form of pack entries.
                    hdr = bytearray([0x80 | (3 << 4) | (size & 0x0F)])
                    n = size >> 4
                    while n:
                        hdr[-1] |= 0x80
                        hdr.append(n & 0x7F)
                        n >>= 7
                    hdr[-1] &= 0x7F if len(hdr) > 1 else 0xFF
                    obj = bytes(hdr) + zlib.compress(os.urandom(size), 1)
                    for i in range(0, len(obj), 65000):
                        self.wfile.write(pkt(b"\x01" + obj[i:i + 65000]))
            except OSError:
                return

        def respond(self, body: bytes):
            started = time.monotonic()
            mode = current_mode()
            post = self.command == "POST"
            info = {"user": None, "bytes_in": len(body), "authorization": self.header("Authorization") or None,
                    "content_encoding": self.header("Content-Encoding") or None,
                    "transfer_encoding": self.header("Transfer-Encoding") or None,
                    "git_protocol": self.header("Git-Protocol") or None, "mode": mode,
                    "absolute_form": self.absolute_form}

            if mode == "stall" or (mode == "stall-post" and post):
                self.record(None, **info)
                FOREVER.wait()
            if mode == "500" or (mode == "500-post" and post):
                self.record(500, **info)
                self.send(self.response(500, [("Content-Type", "text/plain")], b"broken on purpose\n"))
                return
            if mode == "endless-post" and post:
                self.record(200, **info)
                self.send_endless_pack()
                return
            if mode == "garbage-refs" and not post:
                self.record(200, **info)
                self.send(self.response(200, [("Content-Type", "application/x-git-upload-pack-advertisement")],
                                        b"001e# service=git-upload-pack\n0000\xff\xfe not a ref line \x00" * 8))
                return
            if self.command not in ("GET", "POST", "HEAD"):
                self.record(405, **info)
                self.send(self.response(405, [("Content-Type", "text/plain"), ("Allow", "GET, POST, HEAD")],
                                        b"method not allowed\n"))
                return
            if not self.authorized():
                self.record(401, **info)
                self.send(self.response(401, [("Content-Type", "text/plain"),
                                              ("WWW-Authenticate", 'Basic realm="git"')],
                                        b"authentication required\n"))
                return
            info["user"] = args["user"]
            if mode == "redirect":
                self.record(302, **info)
                self.send(self.response(302, [("Location", (args["redirect_to"] or "").rstrip("/") + self.path),
                                              ("Content-Type", "text/plain")], b"moved\n"))
                return

            path, _, query = self.path.partition("?")
            env = dict(base_env)
            env.update({
                "REQUEST_METHOD": self.command,
                "PATH_INFO": urllib.parse.unquote(path),
                "QUERY_STRING": query,
                "REQUEST_URI": self.path,
                "CONTENT_TYPE": self.header("Content-Type"),
                "CONTENT_LENGTH": str(len(body)),
                "SERVER_PORT": str(self.server.server_address[1]),
            })
            for k, v in self.headers:
                key = "HTTP_" + k.upper().replace("-", "_")
                if key not in ("HTTP_AUTHORIZATION", "HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE",
                               "HTTP_TRANSFER_ENCODING", "HTTP_PROXY"):
                    env[key] = v  # HTTP_CONTENT_ENCODING (gzip), HTTP_GIT_PROTOCOL, ...
            if args["user"] is not None:
                env["REMOTE_USER"] = args["user"]
                env["AUTH_TYPE"] = "Basic"
            if tls_ctx is not None:
                env["HTTPS"] = "on"
            cgi = subprocess.run([args["backend"]], input=body, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            if cgi.stderr:
                sys.stderr.write(cgi.stderr.decode(errors="replace"))
            status, headers, payload = parse_cgi_output(cgi.stdout)
            info.update(bytes_out=len(payload), cgi_exit=cgi.returncode,
                        cgi_ms=round((time.monotonic() - started) * 1000, 1))
            self.record(status, **info)
            data = self.response(status, headers, payload)
            if mode == "stall-body" and post:
                self.send(data[:len(data) - (len(payload) + 1) // 2])
                FOREVER.wait()
            if mode == "close-body" and post:
                self.send(data[:len(data) - (len(payload) + 1) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send(data, slow=(mode == "slow" or (mode == "slow-post" and post)))

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 64

        def get_request(self):
            sock, addr = self.socket.accept()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls_ctx is not None:
                sock = tls_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            return sock, addr

        def handle_error(self, request, client_address):
            sys.stderr.write(f"error serving {client_address}: {sys.exc_info()[1]!r}\n")

    server = Server((args["bind"], int(args["port"])), Handler)
    port = server.server_address[1]
    tmp = args["port_file"] + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.rename(tmp, args["port_file"])
    sys.stderr.write(f"{http_date()} listening on {args['bind']}:{port} ({'https' if tls_ctx else 'http'}, "
                     f"mode {args['mode']}, root {args['root']})\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=3600)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
