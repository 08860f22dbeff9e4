#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Prints vfio-uring-bench's two regimes in one table (scripts/run-bench, README).

usage: two-regimes.py COPY_BOUND.json DEVICE_BOUND.json|-

Each file is one `vfio-uring-bench --json` run. The copy-bound run compares the engines with
instant devices (memfds) against the raw transport; the device-bound run compares them with
devices that produce and take state at a rate (the FUSE device model) against the ideal the
devices allow.
"""
import json
import sys


def label(run):
    mode = run.get("device_mode", "-")
    return run["engine"] + ("/" + mode if mode not in ("-", "") else "")


def rows(doc):
    return [r for r in doc["runs"] if r.get("verified")]


def failed(doc):
    return [r for r in doc["runs"] if not r.get("verified")]


def workload(doc):
    r0 = doc["runs"][0]
    text = "%d devices x %d MiB, %d channels" % (r0["devices"], r0["size"] >> 20, r0["channels"])
    rate = doc["config"].get("device_rate") or 0
    return text + (", %d MiB/s per device" % (rate >> 20) if rate else ", memfds")


def main():
    copy = json.load(open(sys.argv[1]))
    dev = json.load(open(sys.argv[2])) if sys.argv[2] != "-" else None
    print("\nvfio-uring-bench: both regimes, medians of %d runs each (ratios from the same run)\n"
          % copy["config"]["repeat"])
    head = "%-13s %-14s %12s %7s %10s %9s  %s" % ("regime", "engine", "stop-copy ms", "GB/s",
                                                   "CPU s/GiB", "vs uring", "vs the bound")
    print(head)
    print("-" * len(head))
    for name, doc in (("copy-bound", copy), ("device-bound", dev)):
        if doc is None:
            print("device-bound  (not run: the device model needs root and /dev/fuse)")
            continue
        runs = rows(doc)
        ref = next((r for r in runs if label(r) == "uring/async"), runs[0] if runs else None)
        raw = next((r for r in runs if r["engine"] == "raw"), None)
        print("%s  (%s)" % (name, workload(doc)))
        for r in runs:
            if name == "copy-bound":
                bound = ("%.2fx raw's GB/s" % (r["throughput_gbps"] / raw["throughput_gbps"])
                         if raw else "")
            else:
                bound = "%.2fx the ideal %d ms" % (r["ratio_to_ideal"], r["ideal_ms"])
            print("%-13s %-14s %12.0f %7.2f %10.3f %8.2fx  %s" % (
                "", label(r), r["stop_copy_ms"], r["throughput_gbps"], r["cpu_s_per_gib"],
                r["stop_copy_ms"] / ref["stop_copy_ms"] if ref else float("nan"), bound))
        for r in failed(doc):
            print("%-13s %-14s FAILED: %s" % ("", label(r), r.get("error")))
    print("""
Which figure answers which question:
- device-bound, stop-copy vs the ideal: how close the engine comes to the pace of the devices
  themselves when each produces its state at a rate, as real VFIO devices do. This is what
  decides a real migration's downtime; the ideal is the slowest device's own time plus one
  chunk. `vs uring` above 1 = slower than uring.
- copy-bound, GB/s vs raw and CPU s/GiB: how much of the transport ceiling (raw: bare
  read/send threads, no protocol) the engine reaches, and what it costs in CPU, when the
  devices are instant (memfds): the engine's own overhead, with nothing to hide it.
docs/PERFORMANCE.md has the method, the device-count sweep and the commands.""")
    return 0 if not failed(copy) and not (dev and failed(dev)) else 1


if __name__ == "__main__":
    sys.exit(main())
