#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vfio-uring-bench --precopy: live pre-copy against stop-copy only, through the device model.

usage: bench_precopy.py BENCH CASE
  share  4 devices x 8 MiB at 16 MiB/s, --precopy 0.75, no dirty rate: both runs verify
         every byte; the pre-copy run moved exactly the initial share (6 MiB a device) live,
         the rest (2 MiB a device) after the stop, was ready at the stop; the stop-copy-only
         run moved everything after the stop; the stop-copy time ratio is below 0.6 (loose:
         about 0.25 expected; not an absolute timing assertion)
  dirty  the same with --dirty-rate 1M: every byte verifies, the live and stop-copy bytes
         add up to the streams, which are longer than the state by the dirty bytes
Exit 0 pass, 1 fail, 77 skip (no /dev/fuse, not root, or uring not in this build).
"""
import json
import subprocess
import sys

from bench_devmodel import cannot_run  # the device model's needs: /dev/fuse, root

DEVICES, SIZE = 4, 8 << 20
INITIAL = (SIZE * 3 // 4) & ~4095  # --precopy 0.75, rounded down to 4 KiB as the bench does


def run(bench, extra):
    cmd = [bench, "--devices", str(DEVICES), "--size", "8M", "--device-rate", "16M",
           "--precopy", "0.75", "--device-mode", "async", "--repeat", "1", "--json",
           "--quiet", "--timeout", "60"] + extra
    print("running:", " ".join(cmd))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=180)
    sys.stderr.write(p.stderr)
    try:
        out = json.loads(p.stdout)
    except ValueError as e:
        print("FAIL: output is not the bench's JSON:", e, p.stdout[:300])
        return None, None
    return p.returncode, out


def split(out):
    runs = out["runs"]
    if any(r.get("errno") == 38 for r in runs):
        return "skip", None
    only = [r for r in runs if r["precopy"] is False]
    pre = [r for r in runs if r["precopy"] is True]
    if len(only) != 1 or len(pre) != 1:
        print("FAIL: want one stop-copy-only and one pre-copy run, got", runs)
        return None, None
    return only[0], pre[0]


def check_common(rc, only, pre):
    for r in (only, pre):
        if not r["verified"] or r["error"] is not None:
            print("FAIL: %s run not verified: %s" % (
                "pre-copy" if r["precopy"] else "stop-copy-only", r["error"]))
            return False
    if rc != 0:
        print("FAIL: exit code", rc)
        return False
    if only["live_bytes"] != 0 or only["stop_copy_bytes"] != DEVICES * SIZE:
        print("FAIL: stop-copy-only run: live %r, stop-copy %r bytes (want 0, %d)" % (
            only["live_bytes"], only["stop_copy_bytes"], DEVICES * SIZE))
        return False
    if not pre["precopy_ready"]:
        print("FAIL: the engine was not ready at the stop (the live phase hit its limit)")
        return False
    return True


def run_checked(bench, extra):
    """Both runs, checked in common: (only, pre), or an exit code when that failed or skips."""
    rc, out = run(bench, extra)
    if out is None:
        return 1
    only, pre = split(out)
    if only == "skip":
        print("SKIP: uring not in this build")
        return 77
    if only is None or not check_common(rc, only, pre):
        return 1
    return only, pre


def share(bench):
    res = run_checked(bench, [])
    if isinstance(res, int):
        return res
    only, pre = res
    if pre["live_bytes"] != DEVICES * INITIAL:
        print("FAIL: live bytes %r, want the initial share %d" % (pre["live_bytes"],
                                                                 DEVICES * INITIAL))
        return 1
    if pre["stop_copy_bytes"] != DEVICES * (SIZE - INITIAL):
        print("FAIL: stop-copy bytes %r, want %d" % (pre["stop_copy_bytes"],
                                                    DEVICES * (SIZE - INITIAL)))
        return 1
    ratio = pre["stop_copy_ratio_to_stop_copy_only"]
    if ratio is None or not 0 < ratio < 0.6:
        print("FAIL: stop-copy ratio %r (pre-copy %r ms / stop-copy only %r ms), want < 0.6"
              % (ratio, pre["stop_copy_ms"], only["stop_copy_ms"]))
        return 1
    print("ok: live %d MiB in %.0f ms, stop-copy %d MiB in %.0f ms vs %.0f ms stop-copy "
          "only: %.2fx" % (pre["live_bytes"] >> 20, pre["live_ms"], pre["stop_copy_bytes"] >> 20,
                           pre["stop_copy_ms"], only["stop_copy_ms"], ratio))
    return 0


def dirty(bench):
    res = run_checked(bench, ["--dirty-rate", "1M", "--precopy-max-ms", "5000"])
    if isinstance(res, int):
        return res
    only, pre = res
    total = pre["live_bytes"] + pre["stop_copy_bytes"]
    # The stream is the state plus the dirty bytes: longer while the device ran live.
    if pre["live_bytes"] < DEVICES * INITIAL or total <= DEVICES * SIZE:
        print("FAIL: live %r + stop-copy %r bytes: want live >= %d and a total above %d" % (
            pre["live_bytes"], pre["stop_copy_bytes"], DEVICES * INITIAL, DEVICES * SIZE))
        return 1
    if pre["stop_copy_bytes"] < DEVICES * (SIZE - INITIAL):
        print("FAIL: stop-copy bytes %r below the stop-copy part %d" % (
            pre["stop_copy_bytes"], DEVICES * (SIZE - INITIAL)))
        return 1
    print("ok: live %.1f MiB, stop-copy %.1f MiB (%.1f MiB dirtied), every byte verified" % (
        pre["live_bytes"] / 2**20, pre["stop_copy_bytes"] / 2**20,
        (total - DEVICES * SIZE) / 2**20))
    return 0


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("share", "dirty"):
        print(__doc__)
        return 2
    why = cannot_run()
    if why:
        print("SKIP:", why)
        return 77
    return {"share": share, "dirty": dirty}[sys.argv[2]](sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
