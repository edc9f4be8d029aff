/* train/signals.h - stopping a run cleanly: the exit signal and the time limit.
 *
 * train.exit_signal (SIGTERM by default; SIGINT, SIGUSR1 or SIGUSR2) and SIGINT always
 * only set a flag; the loop asks mb_train_stop_check after each iteration, every rank
 * together, and a run that any rank wants stopped saves and exits 0 on all of them
 * (Megatron's exit_signal_handler). A second signal while the first is being handled
 * removes the temporary files and kills the process at once: the checkpoint being
 * written is lost, `latest` is untouched. train.exit_duration_in_mins stops the run the
 * same way once it has been up that long (Megatron's exit_duration_in_mins).
 */
#ifndef MB_TRAIN_SIGNALS_H
#define MB_TRAIN_SIGNALS_H

#include <signal.h>

#include "core/config.h"
#include "core/defs.h"
#include "dist/comm.h"

/* What mb_train_stop_check returns besides 0 (go on) and a signal number. */
#define MB_TRAIN_STOP_DURATION (-1)

struct mb_train_stop {
    int signals[2];             /* handled: train.exit_signal and SIGINT (0: unused) */
    double limit_s;             /* train.exit_duration_in_mins in seconds; 0 = none */
    double start;               /* mb_now() when the run started */
};

/* Read train.exit_signal_handler, train.exit_signal and train.exit_duration_in_mins
 * from CFG and install the handlers. Returns 0, or -1 with mb_err naming the key.
 * The handlers stay until the process exits: an exit signal that comes after the last
 * save (Slurm's time-limit signal racing the end of a run) is then noted, not fatal. */
MB_MUST_CHECK int mb_train_stop_init(struct mb_train_stop *s, const mb_config *cfg);

/* Collective: 0 when the run goes on; else, as agreed by every rank, the number of a
 * signal some rank received or MB_TRAIN_STOP_DURATION. */
int mb_train_stop_check(const struct mb_train_stop *s, const struct mb_dist *d);

/* "SIGTERM" for SIGTERM, ... (the four signals of train.exit_signal), else "signal". */
const char *mb_train_signal_name(int sig);

#endif /* MB_TRAIN_SIGNALS_H */
