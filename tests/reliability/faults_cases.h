/* SPDX-License-Identifier: MIT */
/*
 * The fault cases of faults.c, one meson test (fault-NAME) each.
 * Read by faults.c (an X-macro: #define CASE before including) and by meson.build (fs.read:
 * one CASE(name) a line, nothing else on a CASE line but a comment).
 */
CASE(source_read_error_at_start)
CASE(source_read_error_mid)
CASE(dest_enospc)
CASE(dest_load_config_error)
CASE(kill_source)
CASE(kill_destination)
CASE(shutdown_mid_packet_to_dest)
CASE(shutdown_dest_socket_under_source)
CASE(stalled_source_timeout)
CASE(stalled_reader_timeout)
CASE(cancel_destination)
CASE(cancel_source)
CASE(cancel_before_any_data)
CASE(destroy_mid_transfer)
CASE(source_short_reads)
CASE(dest_short_writes)
CASE(source_save_config_error)
CASE(run_reports_error_while_draining) /* regression: engine bug found here, fixed in 33a73fa (faults.c) */
CASE(source_fd_quiet_after_failure) /* regression: engine bug found here, fixed in 33a73fa (faults.c) */
CASE(source_data_bytes_counts_every_read) /* regression: engine bug found here, fixed in 33a73fa (faults.c) */
CASE(status_consistent_while_draining) /* regression: engine bug found here, fixed in 68206f3 (faults.c) */
