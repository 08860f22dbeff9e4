/* SPDX-License-Identifier: MIT */
/*
 * The cases of contract.c, one meson test (contract-NAME, '_' as '-') each.
 * Read by contract.c (an X-macro: #define CASE before including) and by meson.build (fs.read:
 * one CASE(name) a line, nothing else on a CASE line but a comment).
 */
CASE(cancel_in_done)
CASE(cancel_from_loop)
CASE(destroy_reports_devices)
CASE(switchover_then_process)
CASE(wrong_thread)
CASE(cancel_in_last_done)
CASE(cancel_in_load_config)
CASE(switchover_wakes_fd)
