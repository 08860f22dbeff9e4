/* SPDX-License-Identifier: MIT */
/*
 * The cases of precopy.c, one meson test (precopy-NAME, '_' as '-') each.
 * Read by precopy.c (an X-macro: #define CASE before including) and by meson.build (fs.read:
 * one CASE(name) a line, nothing else on a CASE line but a comment).
 */
CASE(initial)
CASE(small_cap)
CASE(dirty)
CASE(overrun)
CASE(live_cap)
CASE(reinit)
CASE(cancel_in_ready)
CASE(info_fails)
CASE(wire)
CASE(wire_off)
CASE(device_model) /* skips (77) without /dev/fuse or root */
