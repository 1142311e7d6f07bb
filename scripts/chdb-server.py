"""A current ClickHouse behind ClickHouse's HTTP interface, for the tests.

No current clickhouse-server installs from the registries this project can reach, but
PyPI's chdb-core embeds one (26.x) in-process. This serves the part of the HTTP interface
adstream's ClickHouse sink and its readers use, so the real sink — its DDL, its RowBinary
inserts, its reads with FINAL — and the report queries run against a current server:

  GET /ping                                   -> "Ok."
  POST /?query=INSERT ... FORMAT RowBinary    (body: the rows) -> inserted
  POST / (body: a query, FORMAT clause and all) -> its result, as ClickHouse formats it

Errors answer 500 with the engine's message, as ClickHouse does. One request at a time
(chdb's session is not shared between threads).

  python3 chdb-server.py PORT DATA_DIR
"""

import http.server
import os
import re
import sys
import tempfile
import threading
import urllib.parse

import chdb.session

LOCK = threading.Lock()
INSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+([\w.`]+)\s*(?:\(([^)]*)\))?\s*FORMAT\s+RowBinary\s*$",
    re.IGNORECASE | re.DOTALL,
)
# Bodies larger than this are refused: the sink sends at most 16 MiB per insert.
MAX_BODY = 256 << 20


class Handler(http.server.BaseHTTPRequestHandler):
    session = None

    def log_message(self, *_):
        pass

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-ClickHouse-Server-Display-Name", "chdb")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path)
        if path.path == "/ping":
            return self.reply(200, b"Ok.\n")
        params = urllib.parse.parse_qs(path.query)
        query = params.get("query", [""])[0]
        self.run(query, b"", params.get("default_format", ["TabSeparated"])[0])

    def body(self):
        """The request's body, plain or chunked (the sink streams inserts in chunks)."""
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise ValueError("body too large")
            return self.rfile.read(length)
        out = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                self.rfile.readline()
                return bytes(out)
            if len(out) + size > MAX_BODY:
                raise ValueError("body too large")
            out += self.rfile.read(size)
            self.rfile.readline()

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path)
        try:
            body = self.body()
        except ValueError as e:
            return self.reply(413, f"{e}\n".encode())
        params = urllib.parse.parse_qs(path.query)
        fmt = params.get("default_format", ["TabSeparated"])[0]
        query = params.get("query", [None])[0]
        if query is None:
            return self.run(body.decode(), b"", fmt)
        self.run(query, body, fmt)

    def run(self, query, data, fmt="TabSeparated"):
        try:
            with LOCK:
                out = self.execute(query, data, fmt)
            self.reply(200, out)
        except Exception as e:  # the engine's error, as ClickHouse answers it
            self.reply(500, f"Code: 1000. DB::Exception: {e}\n".encode())

    def execute(self, query, data, fmt):
        insert = INSERT.match(query)
        if insert is None:
            result = self.session.query(query, fmt)
            return bytes(result.bytes()) if result is not None else b""
        table, columns = insert.group(1).replace("`", ""), insert.group(2)
        described = self.session.query(f"DESCRIBE TABLE {table}", "TabSeparated")
        types = dict(line.split("\t")[:2] for line in described.data().splitlines())
        names = [c.strip().strip("`") for c in columns.split(",")] if columns else list(types)
        structure = ", ".join(f"`{n}` {types[n]}" for n in names)
        cols = ", ".join(f"`{n}`" for n in names)
        with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as f:
            f.write(data)
        try:
            self.session.query(
                f"INSERT INTO {table} ({cols}) SELECT * FROM file('{f.name}', 'RowBinary', '{structure}')"
            )
        finally:
            os.unlink(f.name)
        return b""


def main():
    port, data = int(sys.argv[1]), sys.argv[2]
    Handler.session = chdb.session.Session(data)
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
