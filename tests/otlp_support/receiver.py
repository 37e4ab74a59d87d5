#!/usr/bin/env python3
"""An OTLP/HTTP logs receiver for the tests, decoding with the OpenTelemetry project's own
Python types (PyPI `opentelemetry-proto`), which no one here wrote.

    receiver.py OUT_DIR [--script 503,429:1,close,400,...] [--decode-only]

Listens on 127.0.0.1 on a free port and prints `port N` on stdout. Each POST to /v1/logs is
checked (method, path, Content-Type, gzip) and decoded as an ExportLogsServiceRequest;
every record is appended to OUT_DIR/records.jsonl as one JSON object with every field, and
every request's headers to OUT_DIR/requests.jsonl. A malformed request is answered 400 and
logged to OUT_DIR/errors.log, so a test sees it.

`--script` answers the first requests as listed, then 200: a status such as `503` or `500`,
`429:SECS` (with
Retry-After), `close` (read half the body, then drop the connection without an answer),
`400` (a permanent refusal, with a google.rpc.Status message). Answers that are not 200 do
not store the request's records. Requests under 200 bytes (the shipper's empty start-up
export) do not consume the script. `--decode-only` decodes but stores nothing (benchmarks).
"""

import gzip
import http.server
import json
import os
import socket
import sys
import threading

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2


# Requests smaller than this (an empty export) do not consume the script.
SMALL = 200


def any_value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return {"bool": v.bool_value}
    if kind == "int_value":
        return {"int": v.int_value}
    if kind == "double_value":
        return {"double": v.double_value}
    if kind == "array_value":
        return {"array": [any_value(x) for x in v.array_value.values]}
    if kind == "kvlist_value":
        return {"kvlist": [[kv.key, any_value(kv.value)] for kv in v.kvlist_value.values]}
    if kind == "bytes_value":
        return {"bytes": v.bytes_value.hex()}
    raise ValueError("unknown AnyValue kind " + kind)


def attributes(kvs):
    out = {}
    for kv in kvs:
        if kv.key in out:
            raise ValueError("duplicate attribute " + kv.key)
        out[kv.key] = any_value(kv.value)
    return out


class State:
    def __init__(self, out_dir, script, decode_only):
        self.out_dir = out_dir
        self.script = script
        self.decode_only = decode_only
        self.lock = threading.Lock()
        self.requests = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def refuse(self, why):
        st = self.server.state
        with st.lock:
            with open(os.path.join(st.out_dir, "errors.log"), "a") as f:
                f.write(why + "\n")
        self.answer(400, why.encode())

    def do_POST(self):
        st = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        with st.lock:
            # The shipper's start-up check is an empty export (a few dozen bytes): it is
            # answered normally, so the script applies to batches.
            step = st.script.pop(0) if st.script and length >= SMALL else "ok"
            st.requests += 1
        if step == "close":
            self.rfile.read(length // 2)
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        body = self.rfile.read(length)
        if step.isdigit() and step != "400":
            return self.answer(int(step), b"busy")
        if step.startswith("429"):
            secs = step.split(":", 1)[1] if ":" in step else "1"
            return self.answer(429, b"slow down", [("Retry-After", secs)])
        if step == "400":
            # google.rpc.Status{code: 3, message: "..."}, encoded by hand (2 fields).
            msg = b"bad batch (scripted)"
            status = b"\x08\x03\x12" + bytes([len(msg)]) + msg
            return self.answer(400, status)
        if self.path != "/v1/logs":
            return self.refuse("path " + self.path)
        if self.headers.get("Content-Type") != "application/x-protobuf":
            return self.refuse("content type " + str(self.headers.get("Content-Type")))
        if self.headers.get("Content-Encoding") != "gzip":
            return self.refuse("content encoding " + str(self.headers.get("Content-Encoding")))
        try:
            request = logs_service_pb2.ExportLogsServiceRequest()
            request.ParseFromString(gzip.decompress(body))
            records = []
            for rl in request.resource_logs:
                resource = attributes(rl.resource.attributes)
                for sl in rl.scope_logs:
                    for r in sl.log_records:
                        records.append({
                            "resource": resource,
                            "scope": [sl.scope.name, sl.scope.version],
                            "time_unix_nano": r.time_unix_nano,
                            "observed_time_unix_nano": r.observed_time_unix_nano,
                            "severity_number": r.severity_number,
                            "severity_text": r.severity_text,
                            "body": any_value(r.body),
                            "attributes": attributes(r.attributes),
                            "trace_id": r.trace_id.hex(),
                            "span_id": r.span_id.hex(),
                            "flags": r.flags,
                        })
        except Exception as e:  # noqa: BLE001 - any decoding failure is the test's finding
            return self.refuse("cannot decode: %r" % e)
        if not st.decode_only:
            with st.lock:
                with open(os.path.join(st.out_dir, "records.jsonl"), "a") as f:
                    for rec in records:
                        f.write(json.dumps(rec) + "\n")
                with open(os.path.join(st.out_dir, "requests.jsonl"), "a") as f:
                    f.write(json.dumps({
                        "records": len(records),
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                    }) + "\n")
        else:
            with st.lock:
                with open(os.path.join(st.out_dir, "count"), "w") as f:
                    st.decoded = getattr(st, "decoded", 0) + len(records)
                    f.write(str(st.decoded))
        self.answer(200, logs_service_pb2.ExportLogsServiceResponse().SerializeToString())


def main():
    out_dir = sys.argv[1]
    script = []
    decode_only = False
    args = sys.argv[2:]
    while args:
        a = args.pop(0)
        if a == "--script":
            script = [s for s in args.pop(0).split(",") if s]
        elif a == "--decode-only":
            decode_only = True
        else:
            sys.exit("unknown argument " + a)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = State(out_dir, script, decode_only)
    print("port", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
