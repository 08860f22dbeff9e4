/* SPDX-License-Identifier: MIT */
/*
 * The cases of dest_policy.c, one meson test (dest-policy-NAME, '_' as '-') each.
 * Read by dest_policy.c (an X-macro: #define CASE before including) and by meson.build
 * (fs.read: one CASE(name) a line, nothing else on a CASE line but a comment).
 */
CASE(park_then_stall)     /* memory policy: parking, flow control, the stall after switchover */
CASE(reserve_and_resume)  /* the reserve; HEADER -> PARKED -> PAYLOAD */
CASE(channel_cycle)       /* HANDSHAKE -> HEADER -> PAYLOAD -> HEADER */
CASE(out_of_order)        /* idx 1 before 0: held, written in order; RECEIVING <-> WRITING */
CASE(short_write)         /* continued at its offset */
CASE(precopy_before_switchover) /* pre-copy extension: PRECOPY packets written at once */
CASE(config_loads_last)   /* RECEIVING -> LOADING -> DONE after the data and switchover */
CASE(config_load_waits)   /* RECEIVING -> WAIT_CALLER -> LOADING */
CASE(load_config_fails)   /* LOADING -> FAILED, reason LOAD_CONFIG */
CASE(close_after_done)    /* HEADER -> CLOSED */
CASE(close_early)         /* CLOSED, then STREAM_ENDED */
CASE(close_mid_packet)    /* STREAM_ENDED, STREAM_TRUNCATED */
