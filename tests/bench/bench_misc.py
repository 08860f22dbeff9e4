#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vfio-uring-bench behaviours beyond one engine's run (no speed assertions).

usage: bench_misc.py BENCH CASE
  switchover delayed switchover, 32 MiB of state against an 8 MiB destination cap: both
             `threads` and `uring` complete and verify; uring's destination never holds more
             than its cap (flow control: its channels stop receiving until switchover)
  latecap    the case that used to fail: 2 devices x 256 MiB, switchover 1.5 s late, the
             default 64 MiB cap: uring completes, verifies, buffer peak <= cap
  sweep      a short sweep writes a CSV with a row per point and engine
  usage      bad options exit 2
  twohost    --listen/--connect: two invocations, each runs one side; both report verified
  corrupt    a byte that differs on the destination fails the run loudly (exit 1)
"""
import csv
import json
import os
import subprocess
import sys
import tempfile


def run(cmd, timeout=240):
    print("running:", " ".join(cmd))
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


def switchover(bench):
    p = run([bench, "--engines", "uring,threads", "--devices", "4", "--size", "8M",
             "--channels", "2", "--repeat", "1", "--switchover-delay", "300",
             "--buffer-cap", "8M", "--json", "--quiet"])
    sys.stderr.write(p.stderr)
    doc = json.loads(p.stdout)
    for r in doc["runs"]:
        if r["engine"] == "threads" and not r["verified"]:
            print("FAIL: threads with a delayed switchover:", r["error"])
            return 1
        if r["engine"] == "uring":
            if r.get("errno") == 38:
                print("uring not in this build: only threads checked")
                continue
            if not r["verified"]:
                print("FAIL: uring with a delayed switchover:", r["error"])
                return 1
            if r["dst_buffer_peak_bytes"] > 8 << 20:
                print("FAIL: uring destination held %d bytes over an 8 MiB cap" %
                      r["dst_buffer_peak_bytes"])
                return 1
        print("ok: %s/%s verified=%s error=%s" % (r["engine"], r["device_mode"],
                                                 r["verified"], r["error"]))
    return 0


def latecap(bench):
    p = run([bench, "--engines", "uring", "--devices", "2", "--size", "256M",
             "--switchover-delay", "1500", "--repeat", "1", "--device-mode", "async",
             "--json", "--quiet"])
    sys.stderr.write(p.stderr)
    doc = json.loads(p.stdout)
    for r in doc["runs"]:
        if r.get("errno") == 38:
            print("uring not in this build")
            return 77
        peak, cap = r["dst_buffer_peak_bytes"], 64 << 20
        print("uring/%s: verified=%s stop-copy %.0f ms, destination buffer peak %d of %d" %
              (r["device_mode"], r["verified"], r["stop_copy_ms"], peak, cap))
        if not r["verified"]:
            print("FAIL: a late switchover failed a valid migration:", r["error"])
            return 1
        if peak > cap:
            print("FAIL: destination buffer peak above the cap")
            return 1
    return 0


def sweep(bench):
    with tempfile.TemporaryDirectory() as d:
        prefix = os.path.join(d, "sweep")
        p = run([bench, "--engines", "threads,raw", "--sweep", "--sweep-short",
                 "--sweep-total", "8M", "--repeat", "1", "--sweep-out", prefix, "--quiet"])
        sys.stderr.write(p.stderr)
        if p.returncode != 0:
            print("FAIL: sweep exit status", p.returncode)
            return 1
        with open(prefix + ".csv") as f:
            rows = list(csv.DictReader(f))
        # --sweep-short: 3 device counts + 2 channel counts + 1 chunk size, 2 engines
        if len(rows) != 12 or not all(r["verified"] == "1" for r in rows):
            print("FAIL: sweep CSV has %d rows (want 12), all verified?" % len(rows))
            return 1
        print("ok: sweep wrote %d verified rows" % len(rows))
    return 0


def usage(bench):
    for bad in (["--devices", "0"], ["--size", "12Q"], ["--engines", "nope"], ["--bogus"]):
        p = run([bench] + bad)
        if p.returncode != 2:
            print("FAIL: %s exit %d, want 2" % (bad, p.returncode))
            return 1
    return 0


def corrupt(bench):
    p = run([bench, "--engines", "threads", "--devices", "2", "--size", "2M", "--repeat", "1",
             "--corrupt-for-test", "--json", "--quiet"])
    sys.stderr.write(p.stderr)
    doc = json.loads(p.stdout)
    r = doc["runs"][0]
    if p.returncode != 1 or r["verified"] or "VERIFICATION FAILED" not in (r["error"] or "") \
            or "VERIFICATION FAILED" not in p.stderr:
        print("FAIL: a corrupted byte was not reported loudly:", p.returncode, r)
        return 1
    print("ok: corruption detected:", r["error"])
    return 0


def twohost(bench):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opts = ["--engines", "threads,uring", "--devices", "2", "--size", "3M", "--repeat", "1",
            "--json", "--quiet", "--timeout", "60"]
    dst = subprocess.Popen([bench, "--listen", "127.0.0.1:%d" % port] + opts,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    src = run([bench, "--connect", "127.0.0.1:%d" % port] + opts, timeout=120)
    dout, derr = dst.communicate(timeout=120)
    sys.stderr.write(src.stderr + derr)
    for side, out in (("source", src.stdout), ("destination", dout)):
        for r in json.loads(out)["runs"]:
            if r.get("errno") == 38:
                continue  # uring not in this build
            if not r["verified"]:
                print("FAIL: %s side: %s/%s not verified: %s" % (side, r["engine"],
                                                                r["device_mode"], r["error"]))
                return 1
            print("ok: %s side: %s/%s verified" % (side, r["engine"], r["device_mode"]))
    return 0 if src.returncode == 0 and dst.returncode == 0 else 1


def main():
    bench, case = sys.argv[1], sys.argv[2]
    return {"twohost": twohost, "corrupt": corrupt, "switchover": switchover,
            "latecap": latecap, "sweep": sweep, "usage": usage}[case](bench)


if __name__ == "__main__":
    sys.exit(main())
