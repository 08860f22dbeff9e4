#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Short vfio-uring-bench run: checks that every byte verified and the JSON's shape.

usage: bench_json.py BENCH ENGINE [extra bench options...]
Exit 0 pass, 1 fail, 77 skip (the engine is not in this build). No speed assertions.
"""
import json
import os
import subprocess
import sys

REQUIRED = {
    "engine": str, "devices": int, "channels": int, "bytes": int,
    "throughput_gbps": (int, float), "stop_copy_ms": (int, float),
    "cpu_s_per_gib": (int, float), "src_peak_rss_kib": (int, float),
    "dst_peak_rss_kib": (int, float), "verified": bool,
}


def main():
    bench, engine, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    if "veth" in extra and os.geteuid() != 0:
        print("SKIP: --transport veth needs root (network namespaces)")
        return 77
    devices, size = 3, 1048576 + 4097  # one chunk + a partial one per device
    cmd = [bench, "--engines", engine, "--devices", str(devices), "--size", str(size),
           "--channels", "2", "--chunk", "1M", "--repeat", "2", "--json", "--quiet",
           "--timeout", "60"] + extra
    print("running:", " ".join(cmd))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=180)
    sys.stderr.write(p.stderr)
    try:
        doc = json.loads(p.stdout)
    except ValueError as e:
        print("FAIL: output is not JSON:", e, p.stdout[:500])
        return 1
    runs = doc.get("runs")
    if not isinstance(runs, list) or not runs:
        print("FAIL: no \"runs\" list")
        return 1
    for run in runs:
        if run.get("errno") == 38:  # ENOSYS: the library has no engine in this build
            print("SKIP: engine %s not in this build: %s" % (engine, run.get("error")))
            return 77
        for key, typ in REQUIRED.items():
            if key not in run or not isinstance(run[key], typ):
                print("FAIL: run %s: key %r missing or of the wrong type" % (run, key))
                return 1
        if run["engine"] != engine:
            print("FAIL: engine %r, asked for %r" % (run["engine"], engine))
            return 1
        if run["devices"] != devices or run["bytes"] != devices * size:
            print("FAIL: devices/bytes %d/%d" % (run["devices"], run["bytes"]))
            return 1
        if run["verified"] is not True or run["error"] is not None:
            print("FAIL: %s/%s not verified: %s" % (engine, run.get("device_mode"),
                                                    run.get("error")))
            return 1
        if run["throughput_gbps"] <= 0 or run["stop_copy_ms"] <= 0:
            print("FAIL: no measurement in", run)
            return 1
        print("ok: %s/%s verified %d bytes" % (engine, run["device_mode"], run["bytes"]))
    if p.returncode != 0:
        print("FAIL: exit status", p.returncode)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
