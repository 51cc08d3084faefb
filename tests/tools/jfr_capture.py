#!/usr/bin/env python3
"""A plain HTTP server that records what a Pyroscope SDK pushes to /ingest,
for tests/tools/jfr_capture.sh (the JFR fixtures in tests/data/jfr).

Every POST /ingest is answered 200 and saved in DIR as N.query (the query
string, no newline), N.headers (the request line and headers) and, for a
multipart/form-data body, N.part.NAME for each part (its bytes as sent) and
N.parts (one "NAME FILENAME CONTENT-TYPE BYTES" line per part); any other body
is saved as N.body. N counts pushes from 1, zero-padded to 3 digits. Chunked
bodies (the Java agent's okhttp sends Transfer-Encoding: chunked) are
de-chunked. Anything else is answered 404.

  jfr_capture.py DIR [--port 0]

Prints "port P" on stdout once it listens on 127.0.0.1:P, then serves until
SIGTERM or SIGINT.
"""
import argparse
import http.server
import os
import re
import signal
import sys
import threading
import urllib.parse


def header_param(value, key):
    """The parameter KEY of a header value ('form-data; name="jfr"'), or None."""
    m = re.search(r';\s*' + key + r'="([^"]*)"', value) or re.search(r';\s*' + key + r'=([^;\s]*)', value)
    return m.group(1) if m else None


def split_multipart(ctype, body):
    """[(headers, bytes)] of a multipart body, the bytes exactly as sent; None
    if CTYPE is not multipart with a boundary."""
    if not ctype.lower().startswith("multipart/"):
        return None
    boundary = header_param(ctype, "boundary")
    if not boundary:
        return None
    delim = b"--" + boundary.encode("latin-1")
    parts = []
    # every delimiter but a leading one follows a CRLF that belongs to it
    for chunk in (b"\r\n" + body).split(b"\r\n" + delim)[1:]:
        if chunk.startswith(b"--"):
            break  # the close delimiter
        head, _, data = chunk.partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n")[1:]:  # [0] is the rest of the delimiter line
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        parts.append((headers, data))
    return parts


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counter = 0
    lock = threading.Lock()
    out_dir = "."

    def log_message(self, fmt, *args):
        sys.stderr.write("jfr_capture: " + (fmt % args) + "\n")

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers, up to the empty line
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)  # the chunk's CRLF
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def reply(self, code, text):
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        body = self.read_body()
        if url.path != "/ingest":
            self.reply(404, "not found\n")
            return
        with Handler.lock:
            Handler.counter += 1
            n = Handler.counter
        base = os.path.join(Handler.out_dir, "%03d" % n)
        with open(base + ".query", "w") as f:
            f.write(url.query)
        with open(base + ".headers", "w") as f:
            f.write(self.requestline + "\n" + str(self.headers))
        ctype = self.headers.get("Content-Type", "")
        parts = split_multipart(ctype, body)
        if parts is not None:
            lines = []
            for headers, data in parts:
                disp = headers.get("content-disposition", "")
                name = header_param(disp, "name") or "unnamed"
                name = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
                with open("%s.part.%s" % (base, name), "wb") as f:
                    f.write(data)
                lines.append("%s %s %s %d\n" % (name, header_param(disp, "filename") or "-",
                                                headers.get("content-type", "-"), len(data)))
            with open(base + ".parts", "w") as f:
                f.writelines(lines)
        else:
            with open(base + ".body", "wb") as f:
                f.write(body)
        self.reply(200, "ok\n")

    def do_GET(self):
        self.reply(404, "not found\n")


def main():
    ap = argparse.ArgumentParser(description="record Pyroscope /ingest pushes")
    ap.add_argument("dir")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    Handler.out_dir = args.dir
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("port %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()


if __name__ == "__main__":
    main()
