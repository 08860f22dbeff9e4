#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tracing tests: the byte counts of the bpftrace scripts and of vfio-uring-stat equal the
library's own counters and the workload's known size, exactly.

Each mode starts tracing-driver (a source and a destination process, paused before the
transfer), attaches the tracer(s), waits until they are attached for real (vfio-uring-stat
says "watching" once its links exist; for bpftrace, whose BEGIN fires before its probes are
attached, until `bpftool perf` lists a uprobe per probe site), lets the transfer run, and
compares. Exit 0 pass, 1 fail, 77 skip (with the reason).

usage: tracing_test.py MODE --driver PATH [--stat PATH] [--bpf-dir DIR] [--probes yes|no]
  MODE: stat       vfio-uring-stat -p SOURCE -p DESTINATION (--json)
        stat-binary vfio-uring-stat -b FILE (every process using FILE; the static driver)
        bpftrace   bpftrace vfio-uring-bytes.bt, -reorder.bt and -latency.bt on FILE
                   (every process: both sides at once)
        bpftrace-pid  bpftrace -p DESTINATION and -p SOURCE vfio-uring-bytes.bt
        stat-failure  a destination device fails (load_config): vfio-uring-stat shows it
                   failed with the library's errno and message (the error probe)
        errors     vfio-uring-stat's messages: no such process, no probes, not root
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TIMEOUT = 90  # seconds for any one step; a hang fails the test instead of blocking CI
PROVIDER = "vfio_uring"

children = []  # every process this test started, killed by pid on the way out


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(77)


def fail(reason):
    print(f"FAIL: {reason}")
    cleanup()
    sys.exit(1)


def cleanup():
    for p in children:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def start(cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    children.append(p)
    return p


def wait_for(what, cond, timeout=TIMEOUT, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = cond()
        if r:
            return r
        time.sleep(interval)
    fail(f"timed out waiting for {what}")


def wait_exit(p, what, timeout=TIMEOUT):
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        fail(f"{what} did not exit within {timeout}s")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


# ---- the workload -------------------------------------------------------------------------

class Driver:
    """tracing-driver, started and paused: both engines set up, transfer not started."""

    def __init__(self, path, tmp, args=()):
        self.out = os.path.join(tmp, "driver.out")
        self.p = start([path, *args], stdin=subprocess.PIPE, stdout=open(self.out, "w"),
                       text=True)
        line = wait_for("the driver's pids",
                        lambda: self._first_line() or self._died())
        m = re.match(r"pids source=(\d+) destination=(\d+)", line)
        if not m:
            fail(f"unexpected first line from the driver: {line!r}")
        self.src, self.dst = int(m.group(1)), int(m.group(2))

    def _first_line(self):
        text = read(self.out)
        return text.split("\n", 1)[0] if "\n" in text else None

    def _died(self):
        if self.p.poll() is not None:
            fail(f"the driver exited with {self.p.returncode} before the transfer")
        return None

    def go(self):
        self.p.stdin.write("go\n")
        self.p.stdin.close()
        rc = wait_exit(self.p, "the driver")
        if rc != 0:
            fail(f"the driver failed (exit {rc})")
        lines = read(self.out).strip().split("\n")
        self.result = json.loads(lines[-1])
        return self.result

    def probe_file(self):
        """The file holding the destination's vfio_uring probes: the library or the exe."""
        with open(f"/proc/{self.dst}/maps") as f:
            for line in f:
                i = line.find("/")
                if i >= 0 and "libvfio-uring" in line[i:]:
                    return line[i:].strip()
        return os.readlink(f"/proc/{self.dst}/exe")


def check_library_counters(r):
    """The library's counters against the workload's known size (the driver's numbers)."""
    exp = r["expected"]
    for side in ("source", "destination"):
        s = r[side]
        for d, e in zip(s["devices"], exp["devices"]):
            if d["state"] != "done":
                fail(f"{side} {d['idstr']}: state {d['state']}")
            if d["bytes"] != e["bytes"]:
                fail(f"{side} {d['idstr']}: library counts {d['bytes']} bytes, the workload "
                     f"is {e['bytes']} (size {e['size']} + 12 per packet + config)")
            if d["packets"] != e["packets"]:
                fail(f"{side} {d['idstr']}: library counts {d['packets']} packets, "
                     f"expected {e['packets']}")
        if s["bytes"] != exp["bytes"]:
            fail(f"{side}: library total {s['bytes']} bytes, workload {exp['bytes']}")


def dev_key(side, pid, idstr, inst):
    return (side, int(pid), idstr, int(inst))


def compare(tool, r, devices, channels, totals, sides=("source", "destination")):
    """devices: {(side, pid, idstr, inst): (bytes, packets)}, channels: {(side, pid, ch):
    (wire_bytes, packets)}, totals: {(side, pid): bytes}. Exact equality everywhere."""
    exp = r["expected"]
    checked = 0
    for side in sides:
        s = r[side]
        pid = s["pid"]
        for d, e in zip(s["devices"], exp["devices"]):
            k = dev_key(side, pid, d["idstr"], d["instance_id"])
            if k not in devices:
                fail(f"{tool}: no counters for {k}; it has {sorted(devices)}")
            got_bytes, got_packets = devices[k]
            if got_bytes != d["bytes"] or got_bytes != e["bytes"]:
                fail(f"{tool}: {k}: {got_bytes} bytes; library {d['bytes']}, "
                     f"workload {e['bytes']}")
            if got_packets != d["packets"]:
                fail(f"{tool}: {k}: {got_packets} packets; library {d['packets']}")
            checked += 1
        for c in s["channels"]:
            k = (side, pid, c["channel"])
            got = channels.get(k)
            if got is None:
                fail(f"{tool}: no counters for channel {k}")
            if got[0] != c["wire_bytes"] or got[1] != c["packets"]:
                fail(f"{tool}: channel {k}: {got[0]} wire bytes, {got[1]} packets; library "
                     f"{c['wire_bytes']} wire bytes, {c['packets']} packets")
        t = totals.get((side, pid))
        if t != s["bytes"] or t != exp["bytes"]:
            fail(f"{tool}: {side} pid {pid}: total {t} bytes; library {s['bytes']}, "
                 f"workload {exp['bytes']}")
        print(f"ok: {tool}: {side} pid {pid}: {len(s['devices'])} devices, "
              f"{len(s['channels'])} channels, total {t} bytes = library = workload")
    return checked


# ---- vfio-uring-stat ----------------------------------------------------------------------

def stat_watching(p, err_path):
    def cond():
        text = read(err_path)
        if "watching" in text:
            return True
        if p.poll() is not None:
            fail(f"vfio-uring-stat exited with {p.returncode}: {text.strip()}")
        return False
    wait_for("vfio-uring-stat to attach", cond)


def parse_stat(out_path):
    lines = [json.loads(l) for l in read(out_path).split("\n") if l.strip()]
    if not lines or not lines[-1].get("final"):
        fail("vfio-uring-stat printed no final summary")
    final = lines[-1]
    devices = {dev_key(d["side"], d["pid"], d["idstr"], d["instance_id"]):
               (d["bytes"], d["packets"]) for d in final["devices"]}
    channels = {(c["side"], c["pid"], c["channel"]): (c["wire_bytes"], c["packets"])
                for c in final["channels"]}
    totals = {}
    for d in final["devices"]:
        k = (d["side"], d["pid"])
        totals[k] = totals.get(k, 0) + d["bytes"]
    return final, devices, channels, totals


def check_stat_extras(final, r):
    """Beyond bytes: device states, the library's byte count at device_done, data written."""
    exp = {(e["idstr"], e["instance_id"]): e for e in r["expected"]["devices"]}
    for d in final["devices"]:
        if d["pid"] not in (r["source"]["pid"], r["destination"]["pid"]):
            continue
        e = exp[(d["idstr"], d["instance_id"])]
        if d["state"] != "done" or d["done_bytes"] != d["bytes"]:
            fail(f"vfio-uring-stat: {d['side']} {d['idstr']}: state {d['state']}, "
                 f"device_done said {d['done_bytes']} bytes, probes summed {d['bytes']}")
        if d["side"] == "destination":
            if d["written_bytes"] != e["size"]:
                fail(f"vfio-uring-stat: {d['idstr']}: {d['written_bytes']} data bytes "
                     f"written, device size {e['size']}")
            if d["config_len"] != e["config_len"]:
                fail(f"vfio-uring-stat: {d['idstr']}: config_loaded said "
                     f"{d['config_len']} bytes, config is {e['config_len']}")


def run_stat(a, tmp, binary_mode):
    drv = Driver(a.driver, tmp)
    out, err = os.path.join(tmp, "stat.out"), os.path.join(tmp, "stat.err")
    if binary_mode:
        cmd = [a.stat, "--json", "-b", drv.probe_file()]
    else:
        cmd = [a.stat, "--json", "-p", str(drv.src), "-p", str(drv.dst)]
    st = start(cmd, stdout=open(out, "w"), stderr=open(err, "w"))
    stat_watching(st, err)
    r = drv.go()
    if binary_mode:
        st.send_signal(signal.SIGINT)  # -b runs until told to stop
    rc = wait_exit(st, "vfio-uring-stat")
    if rc != 0:
        fail(f"vfio-uring-stat exited with {rc}: {read(err).strip()}")
    check_library_counters(r)
    final, devices, channels, totals = parse_stat(out)
    compare("vfio-uring-stat", r, devices, channels, totals)
    check_stat_extras(final, r)


def run_stat_failure(a, tmp):
    drv = Driver(a.driver, tmp, ["-F", "-s", str(3 << 20)])
    out, err = os.path.join(tmp, "stat.out"), os.path.join(tmp, "stat.err")
    st = start([a.stat, "--json", "-q", "-p", str(drv.dst)], stdout=open(out, "w"),
               stderr=open(err, "w"))
    stat_watching(st, err)
    r = drv.go()["failed"]
    rc = wait_exit(st, "vfio-uring-stat")
    if rc != 0:
        fail(f"vfio-uring-stat exited with {rc}: {read(err).strip()}")
    final, devices, channels, totals = parse_stat(out)
    dev = [d for d in final["devices"] if d["pid"] == r["pid"] and
           d["idstr"] == r["idstr"] and d["instance_id"] == r["instance_id"]]
    if len(dev) != 1 or dev[0]["side"] != "destination" or dev[0]["state"] != "failed" or \
            dev[0]["error"] != r["error"]:
        fail(f"vfio-uring-stat: expected {r['idstr']} failed with {r['error']}; got {dev}")
    errs = [e for e in final["errors"] if e["pid"] == r["pid"]]
    if len(errs) != 1 or errs[0]["side"] != "destination" or errs[0]["error"] != r["error"] \
            or errs[0]["count"] != 1 or not r["message"].startswith(errs[0]["message"]):
        fail(f"vfio-uring-stat: expected one destination error {r['error']} "
             f"{r['message']!r}; got {errs}")
    print(f"ok: vfio-uring-stat: {r['idstr']} failed with {r['error']}: {errs[0]['message']}")


# ---- bpftrace -----------------------------------------------------------------------------

def probe_sites(path, names):
    """Number of vfio_uring USDT sites in PATH for the given probe names (readelf -n)."""
    out = subprocess.run(["readelf", "-n", "--wide", path], capture_output=True,
                         text=True, check=True).stdout
    return sum(1 for provider, name in re.findall(r"Provider:\s*(\S+)\s+Name:\s*(\S+)", out)
               if provider == PROVIDER and name in names)


def script_probes(script):
    return set(re.findall(r"usdt:\$1:vfio_uring:(\w+)", read(script)))


def uprobes_of(pid):
    out = subprocess.run(["bpftool", "-j", "perf", "show"], capture_output=True, text=True)
    if out.returncode != 0:
        return 0
    return sum(1 for e in json.loads(out.stdout or "[]")
               if e.get("pid") == pid and e.get("fd_type") in ("uprobe", "uretprobe"))


def start_bpftrace(script, tmp, name, target_file, pid=None):
    out, err = os.path.join(tmp, name + ".out"), os.path.join(tmp, name + ".err")
    cmd = ["bpftrace", "-f", "json"]
    if pid:
        cmd += ["-p", str(pid), script]
    else:
        cmd += [script, target_file]
    sites = probe_sites(target_file, script_probes(script))
    if not sites:
        fail(f"{target_file} has no vfio_uring probe sites for {script}")
    p = start(cmd, stdout=open(out, "w"), stderr=open(err, "w"))
    return p, out, err, sites


def wait_bpftrace(p, err, sites, name):
    def cond():
        if p.poll() is not None:
            fail(f"bpftrace {name} exited with {p.returncode}: {read(err).strip()}")
        return uprobes_of(p.pid) >= sites
    wait_for(f"bpftrace {name} to attach {sites} uprobes", cond, interval=0.2)


def bpftrace_maps(out_path):
    """{map name: {key string: value}} from bpftrace -f json output (last print wins)."""
    maps = {}
    for line in read(out_path).split("\n"):
        if not line.strip():
            continue
        try:
            m = json.loads(line)
        except json.JSONDecodeError:
            continue
        if m.get("type") in ("map", "hist", "stats"):
            for name, val in m["data"].items():
                if val:
                    maps.setdefault(name, {}).update(val if isinstance(val, dict)
                                                     else {"": val})
    return maps


def split_key(key, head, tail):
    """bpftrace joins a map's key fields with ','; an idstr may itself hold commas."""
    parts = key.split(",")
    return parts[:head] + [",".join(parts[head:len(parts) - tail])] + \
        (parts[len(parts) - tail:] if tail else [])


def parse_bytes_bt(out_path):
    maps = bpftrace_maps(out_path)
    for need in ("@bytes", "@packets", "@chan_wire_bytes", "@chan_packets", "@total_bytes"):
        if need not in maps:
            fail(f"bpftrace printed no {need}: {read(out_path)[-2000:]}")
    devices = {}
    for key, b in maps["@bytes"].items():
        side, pid, idstr, inst = split_key(key, 2, 1)
        k = dev_key(side, pid, idstr, inst)
        devices[k] = (b, maps["@packets"].get(key))
    channels = {}
    for key, w in maps["@chan_wire_bytes"].items():
        side, pid, ch = key.split(",")
        channels[(side, int(pid), int(ch))] = (w, maps["@chan_packets"].get(key, 0))
    totals = {}
    for key, b in maps["@total_bytes"].items():
        side, pid = key.split(",")
        totals[(side, int(pid))] = b
    return devices, channels, totals


def hist_counts(maps, name):
    """{key: total count} of a keyed histogram."""
    return {k: sum(b["count"] for b in buckets) for k, buckets in maps.get(name, {}).items()}


def run_bpftrace(a, tmp):
    drv = Driver(a.driver, tmp)
    target = drv.probe_file()
    tracers = {}
    for name in ("bytes", "reorder", "latency"):
        script = os.path.join(a.bpf_dir, f"vfio-uring-{name}.bt")
        tracers[name] = start_bpftrace(script, tmp, name, target)
    for name, (p, out, err, sites) in tracers.items():
        wait_bpftrace(p, err, sites, name)
    r = drv.go()
    for name, (p, out, err, sites) in tracers.items():
        p.send_signal(signal.SIGINT)  # on a file, bpftrace runs until told to stop
        rc = wait_exit(p, f"bpftrace {name}")
        if rc != 0:
            fail(f"bpftrace {name} exited with {rc}: {read(err).strip()}")
    check_library_counters(r)
    devices, channels, totals = parse_bytes_bt(tracers["bytes"][1])
    compare("vfio-uring-bytes.bt", r, devices, channels, totals)

    # One reorder-depth sample per packet received, one receive-to-write time per data
    # packet written (the config packet is loaded, not written).
    dst = r["destination"]
    depth = hist_counts(bpftrace_maps(tracers["reorder"][1]), "@depth")
    wait = hist_counts(bpftrace_maps(tracers["latency"][1]), "@receive_to_write_us")
    for d in dst["devices"]:
        k = f"{dst['pid']},{d['idstr']},{d['instance_id']}"
        if depth.get(k) != d["packets"]:
            fail(f"vfio-uring-reorder.bt: {k}: {depth.get(k)} samples, "
                 f"{d['packets']} packets received")
        if wait.get(k) != d["packets"] - 1:
            fail(f"vfio-uring-latency.bt: {k}: {wait.get(k)} samples, "
                 f"{d['packets'] - 1} data packets written")
    print(f"ok: vfio-uring-reorder.bt and vfio-uring-latency.bt: one sample per packet")


def run_bpftrace_pid(a, tmp):
    drv = Driver(a.driver, tmp)
    script = os.path.join(a.bpf_dir, "vfio-uring-bytes.bt")
    target = drv.probe_file()
    tracers = {}
    for name, pid in (("bytes-src", drv.src), ("bytes-dst", drv.dst)):
        tracers[name] = start_bpftrace(script, tmp, name, target, pid=pid)
    for name, (p, out, err, sites) in tracers.items():
        wait_bpftrace(p, err, sites, name)
    r = drv.go()
    for name, (p, out, err, sites) in tracers.items():
        rc = wait_exit(p, f"bpftrace {name}")  # with -p, bpftrace ends with its process
        if rc != 0:
            fail(f"bpftrace {name} exited with {rc}: {read(err).strip()}")
    check_library_counters(r)
    for name, side in (("bytes-src", "source"), ("bytes-dst", "destination")):
        devices, channels, totals = parse_bytes_bt(tracers[name][1])
        compare(f"vfio-uring-bytes.bt -p ({side})", r, devices, channels, totals,
                sides=(side,))


# ---- error messages -----------------------------------------------------------------------

def run_errors(a, tmp):
    def expect(cmd, text, what, **kw):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, **kw)
        if p.returncode == 0 or text not in p.stderr:
            fail(f"{what}: expected a failure saying {text!r}; got exit {p.returncode}, "
                 f"stderr {p.stderr.strip()!r}")
        print(f"ok: {what}: {p.stderr.strip()}")

    # a pid above the largest possible pid_max (2^22) never exists
    expect([a.stat, "-p", str((1 << 22) + 1)], "no process", "no such process")
    sleeper = start(["sleep", "60"])
    expect([a.stat, "-p", str(sleeper.pid)], "has no vfio_uring USDT probes",
           "a process without the library")
    sleeper.kill()
    sleeper.wait()
    expect([a.stat, "-b", "/bin/sh"], "has no vfio_uring USDT probes",
           "a binary without the library")

    def drop_root():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    # The unprivileged user must reach the binary, wherever the build is: below a private
    # directory (mktemp -d makes them 0700) it could not even execute it. Use a copy.
    public = tempfile.mkdtemp(prefix="vus-errors-")
    try:
        os.chmod(public, 0o755)
        stat_copy = os.path.join(public, "vfio-uring-stat")
        shutil.copy(a.stat, stat_copy)
        os.chmod(stat_copy, 0o755)
        expect([stat_copy, "-p", "1"], "must run as root", "not root", preexec_fn=drop_root)
    finally:
        shutil.rmtree(public)


# ---- main ---------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["stat", "stat-binary", "stat-failure", "bpftrace",
                                     "bpftrace-pid", "errors"])
    ap.add_argument("--driver")
    ap.add_argument("--stat")
    ap.add_argument("--bpf-dir")
    ap.add_argument("--probes", default="yes")
    a = ap.parse_args()

    if os.geteuid() != 0:
        skip("needs root to load BPF programs and attach uprobes")
    if a.probes != "yes":
        skip("the library was built without USDT probes (no sys/sdt.h, or -Dprobes=disabled)")
    if not os.path.exists("/sys/kernel/btf/vmlinux") and not os.path.exists("/sys/fs/bpf"):
        skip("this kernel shows no BPF support (/sys/kernel/btf/vmlinux, /sys/fs/bpf)")
    if (a.mode.startswith("stat") or a.mode == "errors") and not a.stat:
        skip("vfio-uring-stat was not built (-Dbpf=disabled, or clang/bpftool/libbpf/libelf "
             "or the kernel's BTF missing)")
    if a.mode.startswith("bpftrace"):
        for tool in ("bpftrace", "bpftool", "readelf"):
            if not shutil.which(tool):
                skip(f"{tool} is not installed (scripts/install-deps tracing)")

    with tempfile.TemporaryDirectory(prefix="vfio-uring-tracing-") as tmp:
        try:
            {"stat": lambda: run_stat(a, tmp, False),
             "stat-binary": lambda: run_stat(a, tmp, True),
             "stat-failure": lambda: run_stat_failure(a, tmp),
             "bpftrace": lambda: run_bpftrace(a, tmp),
             "bpftrace-pid": lambda: run_bpftrace_pid(a, tmp),
             "errors": lambda: run_errors(a, tmp)}[a.mode]()
        finally:
            cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
