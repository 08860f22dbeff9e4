#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/{wire,dest}/) from the wire
# format in src/wire.h. Run from anywhere: python3 tests/fuzz/gen-corpus.py
import os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC, VERSION, DEVICE_STATE, CONFIG = 0x11223344, 1, 0x40, 0x1
DEV_CONFIG_STATE, END_OF_STATE = 0xffffffffef100002, 0xffffffffef100001
DEST_UUID = bytes([0xfa, 0xce, 0xb0, 0x0c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
WIRE_UUID = bytes(range(1, 17))
IDSTRS = [b"0000:03:00.0/vfio", b"0000:03:00.1/vfio", b"0000:03:00.2/vfio", b"unknown/vfio"]

def handshake(uuid, ch):
    return struct.pack(">II16sB7s32s", MAGIC, VERSION, uuid, ch, b"", b"")

def header(idstr, inst, size, flags=DEVICE_STATE):
    return struct.pack(">III256sII", MAGIC, VERSION, flags, idstr, inst, size)

def vfio(idx, flags=0, version=0):
    return struct.pack(">III", version, idx, flags)

def data(idx, n):
    return bytes((idx * 131 + i * 7 + (i >> 8) + 1) & 0xff for i in range(n))

def packet(dev, idx, n):
    return header(IDSTRS[dev], dev, 12 + n) + vfio(idx) + data(idx, n)

def config(dev, idx, blob):
    framed = struct.pack(">Q", DEV_CONFIG_STATE) + blob + struct.pack(">Q", END_OF_STATE)
    return header(IDSTRS[dev], dev, 12 + len(framed)) + vfio(idx, CONFIG) + framed

def write(sub, name, blob):
    d = os.path.join(HERE, "corpus", sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)

# --- wire decoders: the last byte of a handshake seed is the channel count ---
write("wire", "handshake", handshake(WIRE_UUID, 1) + b"\x04")
write("wire", "handshake-bad-version", handshake(WIRE_UUID, 1)[:4] + b"\0\0\0\2" + handshake(WIRE_UUID, 1)[8:] + b"\x04")
write("wire", "packet", packet(0, 5, 64))
write("wire", "config-packet", config(1, 9, b"blob"))
write("wire", "vfio-header", vfio(7, 0) + b"data")
write("wire", "config-framing", struct.pack(">Q", DEV_CONFIG_STATE) + b"cfg" + struct.pack(">Q", END_OF_STATE))
write("wire", "header-sync", header(IDSTRS[0], 0, 100, DEVICE_STATE | 1))
write("wire", "header-compressed", header(IDSTRS[0], 0, 100, DEVICE_STATE | 2))

# --- destination: raw mode (byte 0 even; bytes 1-2 = channel 0's share) ---
def raw(ch0, ch1, mode=0):
    return bytes([mode]) + struct.pack(">H", len(ch0)) + ch0 + ch1

ch0 = handshake(DEST_UUID, 0) + packet(0, 0, 3000) + packet(0, 2, 100) + config(1, 1, b"c1")
ch1 = handshake(DEST_UUID, 1) + packet(1, 0, 500) + packet(0, 1, 2000) + config(0, 3, b"config-0")
write("dest", "raw-complete", raw(ch0, ch1))
write("dest", "raw-complete-no-switchover", raw(ch0, ch1, 2))
write("dest", "raw-truncated", raw(ch0[:-50], ch1))
write("dest", "raw-dup-idx", raw(ch0 + packet(0, 1, 10), ch1))
write("dest", "raw-one-channel", raw(handshake(DEST_UUID, 0) + packet(0, 0, 10) + config(0, 1, b""), b""))
flood = handshake(DEST_UUID, 1) + b"".join(packet(0, i, 4000) for i in range(1, 15))
write("dest", "raw-flood-small-cap", raw(handshake(DEST_UUID, 0), flood, 4))

# --- destination: ops mode (byte 0 odd) ---
def op_data(ch, dev, idx, n):
    return bytes([0, ch | dev << 1, idx]) + struct.pack(">H", n)

def op_config(ch, dev, idx, n):
    return bytes([1, ch | dev << 1, idx, n])

def op_raw(ch, blob):
    return bytes([2, ch, len(blob)]) + blob

def op_header(ch, dev, size, flags):
    return bytes([3, ch | dev << 1]) + struct.pack(">IB", size, flags)

def op_vfio(ch, dev, version, idx, flags, n):
    return bytes([4, ch | dev << 1, version]) + struct.pack(">IIB", idx, flags, n)

def op_end(ch):
    return bytes([5, ch])

complete = (op_data(0, 0, 0, 1000) + op_data(1, 0, 1, 1000) + op_data(0, 1, 0, 300) +
            op_config(1, 0, 2, 8) + op_config(0, 1, 1, 0))
write("dest", "ops-complete", b"\x01" + complete)
write("dest", "ops-complete-no-switchover", b"\x03" + complete)
write("dest", "ops-out-of-order", b"\x01" + op_config(0, 0, 3, 4) + op_data(1, 0, 2, 50) +
      op_data(0, 0, 1, 50) + op_data(1, 0, 0, 50) + op_data(0, 1, 0, 1) + op_config(1, 1, 1, 1))
write("dest", "ops-unknown-device", b"\x01" + op_data(0, 3, 0, 10))
write("dest", "ops-not-multifd", b"\x01" + op_data(1, 2, 0, 10))
write("dest", "ops-bad-header", b"\x01" + op_header(0, 0, 0xffffffff, 0))
write("dest", "ops-bad-vfio", b"\x01" + op_vfio(0, 1, 1, 0, 0, 8) + op_vfio(1, 0, 0, 0xffffffff, 0, 8))
write("dest", "ops-garbage", b"\x01" + op_data(0, 0, 0, 10) + op_raw(0, b"\xab" * 20) + op_data(0, 0, 1, 10))
write("dest", "ops-early-end", b"\x01" + op_data(0, 0, 0, 10) + op_end(0) + op_data(0, 0, 1, 10) + op_end(1))
write("dest", "ops-flood-small-cap", b"\x05" + b"".join(op_data(i & 1, i & 1, 1 + i, 4000) for i in range(20)))
