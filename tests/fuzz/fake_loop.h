/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A stand-in for util/loop.c in the fuzz targets: the same functions, no io_uring.  Submissions
 * (NOP, POLL_ADD, ASYNC_CANCEL) and watches are kept in tables and completed by
 * fake_loop_settle(), deterministically and without waiting, so one input always runs the same
 * way.  A watch runs only after fake_loop_fire() said new bytes arrived, as a multishot poll
 * fires only on new data.
 */
#ifndef XM_FAKE_LOOP_H
#define XM_FAKE_LOOP_H

#include <stdbool.h>

#include "util/loop.h"

/* Forgets everything (after a run that left nothing behind); fail_at > 0 makes the fail_at-th
 * submission or watch from now on fail, as a full ring would. */
void fake_loop_reset(unsigned int fail_at);
/* Counts submissions and watches towards fail_at only from now on. */
void fake_loop_arm_faults(void);
/* New bytes, a connection or EOF may have arrived: every watch whose fd is readable runs at the
 * next settle. */
void fake_loop_fire(void);
/* Completes what can complete and runs what fired, until nothing moves; returns true if anything
 * ran.  Aborts on a livelock. */
bool fake_loop_settle(void);
/* Submissions not completed yet plus watches not released yet. */
unsigned int fake_loop_pending(void);

#endif
