#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An HTTP forward proxy on 127.0.0.1 for the integration tests (Python standard library only).

  http-proxy.py --port-file FILE --log FILE [--user U --password-env VAR]

- CONNECT host:port: a tunnel (https through the proxy).
- METHOD http://host:port/path: the request goes on to the origin in origin form, with
  `Connection: close` and without the Proxy-* headers; from then on bytes are copied both ways
  until the origin closes (so request bodies of any framing, chunked included, pass as they
  are, and the client learns from the origin's `Connection: close` to open a new connection).
- --user: every request needs `Proxy-Authorization: Basic` with that user and the password in
  the environment variable VAR; 407 with `Proxy-Authenticate: Basic realm="proxy"` otherwise.

Every request is appended to the log as one line: `METHOD TARGET STATUS`, STATUS being 200 for
a tunnel or a forwarded request (the origin's answer is not parsed), 407 or 502.
"""

import argparse
import base64
import os
import select
import socket
import socketserver
import sys
import threading
import urllib.parse

MAX_HEAD = 64 * 1024


def read_head(sock: socket.socket) -> tuple[bytes, bytes] | None:
    """The request head (up to the blank line) and what came after it; None at EOF."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
        if len(buf) > MAX_HEAD:
            return None
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def pipe(a: socket.socket, b: socket.socket) -> None:
    """Copies both ways until b (the origin) is done; a half-closed client is passed on."""
    socks = [a, b]
    while socks:
        readable, _, _ = select.select(socks, [], [], 60)
        if not readable:
            return
        for s in readable:
            other = b if s is a else a
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                if s is b:
                    return
                socks.remove(s)
                try:
                    other.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            try:
                other.sendall(data)
            except OSError:
                return


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--user")
    ap.add_argument("--password-env")
    args = ap.parse_args()
    expected = None
    if args.user is not None:
        password = os.environ[args.password_env]
        expected = "Basic " + base64.b64encode(f"{args.user}:{password}".encode()).decode()
    log_lock = threading.Lock()

    def log(line: str) -> None:
        with log_lock, open(args.log, "a") as f:
            f.write(line + "\n")

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            client = self.request
            got = read_head(client)
            if got is None:
                return
            head, rest = got
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                return
            headers = [h for h in lines[1:] if h]
            auth = next((h.split(":", 1)[1].strip() for h in headers
                         if h.lower().startswith("proxy-authorization:")), None)
            if expected is not None and auth != expected:
                log(f"{method} {target} 407")
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                               b"Proxy-Authenticate: Basic realm=\"proxy\"\r\n"
                               b"Connection: close\r\nContent-Length: 0\r\n\r\n")
                return
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                try:
                    origin = socket.create_connection((host, int(port)), timeout=10)
                except (OSError, ValueError):
                    log(f"{method} {target} 502")
                    client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                    return
                log(f"{method} {target} 200")
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                with origin:
                    if rest:
                        origin.sendall(rest)
                    pipe(client, origin)
                return
            u = urllib.parse.urlsplit(target)
            if u.scheme != "http" or not u.hostname:
                log(f"{method} {target} 400")
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                return
            try:
                origin = socket.create_connection((u.hostname, u.port or 80), timeout=10)
            except OSError:
                log(f"{method} {target} 502")
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                return
            log(f"{method} {target} 200")
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            keep = [h for h in headers if h.split(":", 1)[0].strip().lower() not in
                    ("proxy-authorization", "proxy-connection", "connection", "keep-alive")]
            out = f"{method} {path} {version}\r\n" + "".join(h + "\r\n" for h in keep) + "Connection: close\r\n\r\n"
            with origin:
                origin.sendall(out.encode("latin-1") + rest)
                pipe(client, origin)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", 0), Handler) as srv:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(srv.server_address[1]))
        os.replace(tmp, args.port_file)
        srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
