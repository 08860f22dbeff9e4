#!/usr/bin/env python3
# The `guest-6.1` test's list of cases: every test of suite `integration` that runs the
# tests/integration/transfer program, read from meson's own introspection
# (BUILD/meson-info/intro-tests.json), so the guest runs what `meson test --suite integration`
# runs on the host, with the same arguments. A case added to tests/integration/meson.build
# is picked up at the next reconfigure without touching this file.
#
# Usage: transfer-cases.py INTRO_TESTS_JSON OUT_FILE
# OUT_FILE: one line per case, "name arg arg ...". Exit 1 if no case is found.
#
# Sizes are scaled for QEMU TCG (10-50x slower than the host): any device size above
# TCG_MAX_SIZE in --sizes becomes TCG_MAX_SIZE; the size list keeps its length and order, so
# the zero, one-byte, one-chunk and chunk+1 devices stay exactly as on the host. Today this
# changes only the two 100M cases. A rewritten case is listed with its host arguments in a
# comment line ("# name: sizes X -> Y") that the guest prints.
import json
import os
import sys

TCG_MAX_SIZE = 16 << 20
# Cases that assert wall-clock accuracy (the bandwidth cap within 10% of its rate) measure
# the host's timers, not the kernel's io_uring: under TCG, 10-50x slower and with a clock
# that jumps with the host's load, they say nothing about the library on 6.1. Listed as
# skipped, with the reason, so the list stays complete.
TIMING_ARGS = ('--rate-limit',)
SUFFIX = {'K': 10, 'k': 10, 'M': 20, 'm': 20, 'G': 30, 'g': 30}


def parse_size(s):
    if s and s[-1] in SUFFIX:
        return int(s[:-1], 0) << SUFFIX[s[-1]]
    return int(s, 0)


def scale_sizes(value):
    out = []
    for tok in value.split(','):
        out.append('%dM' % (TCG_MAX_SIZE >> 20) if parse_size(tok) > TCG_MAX_SIZE else tok)
    return ','.join(out)


def main():
    intro, out = sys.argv[1], sys.argv[2]
    with open(intro) as f:
        tests = json.load(f)
    lines = []
    for t in tests:
        suites = [s.split(':')[-1] for s in t.get('suite', [])]
        if 'integration' not in suites or os.path.basename(t['cmd'][0]) != 'transfer':
            continue
        args = list(t['cmd'][1:])
        if any(a in TIMING_ARGS for a in args):
            lines.append('# %s: skipped under TCG (asserts wall-clock accuracy)' % t['name'])
            continue
        for i, a in enumerate(args[:-1]):
            if a == '--sizes':
                scaled = scale_sizes(args[i + 1])
                if scaled != args[i + 1]:
                    lines.append('# %s: sizes %s -> %s (TCG)' % (t['name'], args[i + 1], scaled))
                    args[i + 1] = scaled
        if any(' ' in a or not a for a in args):
            sys.exit('transfer-cases: %s: an argument with a space cannot be passed' % t['name'])
        lines.append(' '.join([t['name']] + args))
    if not any(not l.startswith('#') for l in lines):
        sys.exit('transfer-cases: no transfer test of suite integration in ' + intro)
    with open(out, 'w') as f:
        f.write('\n'.join(lines) + '\n')


main()
