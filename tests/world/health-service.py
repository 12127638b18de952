#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Test service of the atticd-agent test world.

Listens on 127.0.0.1:PORT and answers STATUS to GET/HEAD /health, the system's marker on
/marker, and 200 on every other path. Once it listens it writes its pid to --pid-file
(atomically), which is what switch-to-configuration waits for. SIGTERM stops it.

--delay SECONDS (fractional): a service that is back only some time after its start. It
writes its pid file at once (so that the next activation finds it and can stop it), then
waits that long, then listens.

The test world copies this file into every client revision, so each system toplevel
carries its own copy (libexec/health-service.py), as a NixOS system would.
"""

import argparse
import http.server
import os
import signal
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--pid-file", required=True)
    ap.add_argument("--marker", default="")
    ap.add_argument("--delay", type=float, default=0.0,
                    help="seconds to wait after the start before listening")
    args = ap.parse_args()

    # Hold no descriptor of whoever started us beyond stdio (already redirected to a log).
    os.closerange(3, 65536)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, with_body: bool) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                status, body = args.status, f"status {args.status}\n"
            elif path == "/marker":
                status, body = 200, args.marker + "\n"
            else:
                status, body = 200, "ok\n"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if with_body:
                self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            self._answer(True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(False)

        def log_message(self, fmt: str, *a) -> None:
            sys.stderr.write(f"health-service[{os.getpid()}]: {fmt % a}\n")
            sys.stderr.flush()

    def on_term(signum, frame):  # leave at once; the socket dies with us
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)

    def write_pid_file() -> None:
        tmp = f"{args.pid_file}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(tmp, args.pid_file)

    if args.delay > 0:
        write_pid_file()
        print(f"health-service[{os.getpid()}]: started, listening in {args.delay} s",
              file=sys.stderr, flush=True)
        time.sleep(args.delay)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True

    if args.delay <= 0:
        write_pid_file()
    print(f"health-service[{os.getpid()}]: listening on 127.0.0.1:{args.port}, "
          f"/health answers {args.status}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
