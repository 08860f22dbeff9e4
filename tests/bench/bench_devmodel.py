#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vfio-uring-bench with the device model (--device-rate): slow devices, every byte checked.

usage: bench_devmodel.py BENCH CASE
  verify   4 devices x 2 MiB at 20M/s: every engine (uring in both device modes) verifies
           every byte through the model's files, and reports the device-bound ideal
  corrupt  a byte that differs on the destination still fails the run loudly (exit 1)
  rate     the rate is honoured: a 1-device transfer takes at least size/rate (a lower bound
           only: on a shared machine a run may always be slower)
  sweep    a short device sweep with a rate writes a CSV row per device count and engine,
           with the ideal and the ratio to it
Exit 0 pass, 1 fail, 77 skip (no /dev/fuse, not root, or uring not in this build).
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

RATE = 20 << 20  # "20M", as the bench parses it


def run(cmd, timeout=120):
    print("running:", " ".join(cmd))
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


def cannot_run():
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine: the device model needs FUSE"
    if os.geteuid() != 0:
        return "not root: mounting the device model's FUSE file system needs root"
    return None


def runs_of(p):
    sys.stderr.write(p.stderr)
    try:
        return json.loads(p.stdout)["runs"]
    except (ValueError, KeyError) as e:
        print("FAIL: output is not the bench's JSON:", e, p.stdout[:300])
        return None


def verify(bench):
    devices, size = 4, 2 << 20
    p = run([bench, "--engines", "uring,threads,legacy,raw", "--device-mode", "both",
             "--devices", str(devices), "--size", "2M", "--channels", "4",
             "--device-rate", "20M", "--repeat", "1", "--json", "--quiet", "--timeout", "60"])
    runs = runs_of(p)
    if runs is None:
        return 1
    seen = set()
    for r in runs:
        name = "%s/%s" % (r["engine"], r["device_mode"])
        if r.get("errno") == 38:
            print("uring not in this build:", name)
            continue
        seen.add(r["engine"])
        if not r["verified"] or r["error"] is not None or r["bytes"] != devices * size:
            print("FAIL: %s not verified through the device model: %s" % (name, r["error"]))
            return 1
        # 2 MiB at 20 MiB/s, then one 1 MiB chunk at 20 MiB/s on the destination
        if abs(r["ideal_ms"] - 150.0) > 0.5 or not r["ratio_to_ideal"] > 0:
            print("FAIL: %s: ideal %r ms (want 150), ratio %r" % (name, r["ideal_ms"],
                                                                r["ratio_to_ideal"]))
            return 1
        if r["device_reads_peak"] < 1 or r["device_writes_peak"] < 1:
            print("FAIL: %s: the model saw no reads or writes: %r" % (name, r))
            return 1
        print("ok: %s verified, %.0f ms, %.2fx the ideal, model peak %d reads / %d writes" % (
            name, r["stop_copy_ms"], r["ratio_to_ideal"], r["device_reads_peak"],
            r["device_writes_peak"]))
    if not {"threads", "legacy", "raw"} <= seen:
        print("FAIL: engines missing from the runs:", seen)
        return 1
    return 0 if p.returncode == 0 else 1


def corrupt(bench):
    p = run([bench, "--engines", "uring,threads,legacy", "--device-mode", "async",
             "--devices", "2", "--size", "2M", "--device-rate", "20M", "--repeat", "1",
             "--corrupt-for-test", "--json", "--quiet", "--timeout", "60"])
    runs = runs_of(p)
    if runs is None:
        return 1
    for r in runs:
        if r.get("errno") == 38:
            continue
        if r["verified"] or "VERIFICATION FAILED" not in (r["error"] or ""):
            print("FAIL: %s: a corrupted byte was not caught: %r" % (r["engine"], r))
            return 1
        print("ok: %s: %s" % (r["engine"], r["error"]))
    if p.returncode != 1 or "VERIFICATION FAILED" not in p.stderr:
        print("FAIL: exit status %d, or nothing said on stderr" % p.returncode)
        return 1
    return 0


def rate(bench):
    size = 4 << 20
    floor_ms = 1000.0 * size / RATE  # the source alone needs this long
    p = run([bench, "--engines", "uring,threads,legacy", "--device-mode", "async",
             "--devices", "1", "--size", "4M", "--channels", "2", "--device-rate", "20M",
             "--repeat", "1", "--json", "--quiet", "--timeout", "60"])
    runs = runs_of(p)
    if runs is None:
        return 1
    for r in runs:
        if r.get("errno") == 38:
            continue
        if not r["verified"]:
            print("FAIL: %s not verified: %s" % (r["engine"], r["error"]))
            return 1
        if r["stop_copy_ms"] < floor_ms:
            print("FAIL: %s moved %d bytes in %.1f ms, faster than the device rate allows "
                  "(%.1f ms)" % (r["engine"], size, r["stop_copy_ms"], floor_ms))
            return 1
        print("ok: %s took %.1f ms >= %.1f ms (size/rate)" % (r["engine"], r["stop_copy_ms"],
                                                              floor_ms))
    return 0 if p.returncode == 0 else 1


def sweep(bench):
    with tempfile.TemporaryDirectory() as d:
        prefix = os.path.join(d, "sweep")
        p = run([bench, "--engines", "uring,threads,legacy", "--device-mode", "async",
                 "--sweep", "--sweep-devices", "1,4", "--sweep-total", "2M",
                 "--device-rate", "20M", "--repeat", "1", "--sweep-out", prefix, "--quiet"])
        sys.stderr.write(p.stderr)
        if p.returncode != 0:
            print("FAIL: sweep exit status", p.returncode)
            return 1
        with open(prefix + ".csv") as f:
            rows = list(csv.DictReader(f))
    bad = [r for r in rows if r["verified"] != "1" or r["sweep"] != "devices" or
           not r["ideal_ms"] or float(r["ratio_to_ideal"]) <= 0]
    if {r["devices"] for r in rows} != {"1", "4"} or len(rows) not in (4, 6) or bad:
        print("FAIL: the device sweep's CSV: %d rows (want 2 device counts x 2-3 engines), "
              "bad rows %r" % (len(rows), bad))
        return 1
    print("ok: device sweep wrote %d verified rows with the ideal" % len(rows))
    return 0


def main():
    bench, case = sys.argv[1], sys.argv[2]
    why = cannot_run()
    if why:
        print("SKIP:", why)
        return 77
    return {"verify": verify, "corrupt": corrupt, "rate": rate, "sweep": sweep}[case](bench)


if __name__ == "__main__":
    sys.exit(main())
