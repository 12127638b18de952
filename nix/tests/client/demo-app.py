# SPDX-License-Identifier: MIT
# The client's application in the VM test: GET /health answers the status given on the
# command line.
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port, status = int(sys.argv[1]), int(sys.argv[2])


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(status if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"demo\n")


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
