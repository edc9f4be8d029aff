/* tests/unit/train_pipe_sched.c - the pipeline schedules as event lists: PP4 with 8
 * micro-batches (with and without VP2) event for event as derived by hand from
 * parallel.md 4.3 / 4.4, the examples printed there, and for many layouts the properties
 * the executor relies on: one forward and one backward per (micro-batch, chunk), the
 * messages around them, matching send and receive sequences between neighbours, and a
 * run of all ranks together without deadlock. (The compute order is compared with
 * megatron-core's own schedule code in t9010.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "tests/lib/tap.h"
#include "train/pipe_sched.h"

/* PP4, M = 8, no VP, with messages. Derived from the pseudo-code of parallel.md 4.3:
 * W = 3 - r warm-up (rf F sf), rf before the steady loop, steady (F sf rb B sb rf, the
 * last without rf), cool-down (rb B sb); rank 0 has no rf / sb, rank 3 no sf / rb. */
static const char *pp4_m8[4] = {
    "F0 sf0 F1 sf1 F2 sf2 "
    "F3 sf3 rb0 B0 F4 sf4 rb1 B1 F5 sf5 rb2 B2 F6 sf6 rb3 B3 F7 sf7 rb4 B4 "
    "rb5 B5 rb6 B6 rb7 B7",

    "rf0 F0 sf0 rf1 F1 sf1 "
    "rf2 F2 sf2 rb0 B0 sb0 rf3 F3 sf3 rb1 B1 sb1 rf4 F4 sf4 rb2 B2 sb2 "
    "rf5 F5 sf5 rb3 B3 sb3 rf6 F6 sf6 rb4 B4 sb4 rf7 F7 sf7 rb5 B5 sb5 "
    "rb6 B6 sb6 rb7 B7 sb7",

    "rf0 F0 sf0 "
    "rf1 F1 sf1 rb0 B0 sb0 rf2 F2 sf2 rb1 B1 sb1 rf3 F3 sf3 rb2 B2 sb2 "
    "rf4 F4 sf4 rb3 B3 sb3 rf5 F5 sf5 rb4 B4 sb4 rf6 F6 sf6 rb5 B5 sb5 "
    "rf7 F7 sf7 rb6 B6 sb6 "
    "rb7 B7 sb7",

    "rf0 F0 B0 sb0 rf1 F1 B1 sb1 rf2 F2 B2 sb2 rf3 F3 B3 sb3 "
    "rf4 F4 B4 sb4 rf5 F5 B5 sb5 rf6 F6 B6 sb6 rf7 F7 B7 sb7",
};

/* PP4 VP2, M = 8, with messages. parallel.md 4.4 with G = 4: the table is
 * (0,0) (1,0) (2,0) (3,0) (0,1) (1,1) (2,1) (3,1) (4,0) .. (7,0) (4,1) .. (7,1); the
 * backward of k is (micro, 1 - chunk) of table[k]; W = (3 - r) 2 + 4 = 10, 8, 6, 4.
 * Chunk 0 of rank 0 has no rf / sb, chunk 1 of rank 3 no sf / rb. */
static const char *pp4_vp2_m8[4] = {
    "F0.0 sf0.0 F1.0 sf1.0 F2.0 sf2.0 F3.0 sf3.0 "
    "rf0.1 F0.1 sf0.1 rf1.1 F1.1 sf1.1 rf2.1 F2.1 sf2.1 rf3.1 F3.1 sf3.1 "
    "F4.0 sf4.0 F5.0 sf5.0 "
    "F6.0 sf6.0 rb0.1 B0.1 sb0.1 F7.0 sf7.0 rb1.1 B1.1 sb1.1 "
    "rf4.1 F4.1 sf4.1 rb2.1 B2.1 sb2.1 rf5.1 F5.1 sf5.1 rb3.1 B3.1 sb3.1 "
    "rf6.1 F6.1 sf6.1 rb0.0 B0.0 rf7.1 F7.1 sf7.1 rb1.0 B1.0 "
    "rb2.0 B2.0 rb3.0 B3.0 rb4.1 B4.1 sb4.1 rb5.1 B5.1 sb5.1 rb6.1 B6.1 sb6.1 "
    "rb7.1 B7.1 sb7.1 rb4.0 B4.0 rb5.0 B5.0 rb6.0 B6.0 rb7.0 B7.0",

    "rf0.0 F0.0 sf0.0 rf1.0 F1.0 sf1.0 rf2.0 F2.0 sf2.0 rf3.0 F3.0 sf3.0 "
    "rf0.1 F0.1 sf0.1 rf1.1 F1.1 sf1.1 rf2.1 F2.1 sf2.1 rf3.1 F3.1 sf3.1 "
    "rf4.0 F4.0 sf4.0 rb0.1 B0.1 sb0.1 rf5.0 F5.0 sf5.0 rb1.1 B1.1 sb1.1 "
    "rf6.0 F6.0 sf6.0 rb2.1 B2.1 sb2.1 rf7.0 F7.0 sf7.0 rb3.1 B3.1 sb3.1 "
    "rf4.1 F4.1 sf4.1 rb0.0 B0.0 sb0.0 rf5.1 F5.1 sf5.1 rb1.0 B1.0 sb1.0 "
    "rf6.1 F6.1 sf6.1 rb2.0 B2.0 sb2.0 rf7.1 F7.1 sf7.1 rb3.0 B3.0 sb3.0 "
    "rb4.1 B4.1 sb4.1 rb5.1 B5.1 sb5.1 rb6.1 B6.1 sb6.1 rb7.1 B7.1 sb7.1 "
    "rb4.0 B4.0 sb4.0 rb5.0 B5.0 sb5.0 rb6.0 B6.0 sb6.0 rb7.0 B7.0 sb7.0",

    "rf0.0 F0.0 sf0.0 rf1.0 F1.0 sf1.0 rf2.0 F2.0 sf2.0 rf3.0 F3.0 sf3.0 "
    "rf0.1 F0.1 sf0.1 rf1.1 F1.1 sf1.1 "
    "rf2.1 F2.1 sf2.1 rb0.1 B0.1 sb0.1 rf3.1 F3.1 sf3.1 rb1.1 B1.1 sb1.1 "
    "rf4.0 F4.0 sf4.0 rb2.1 B2.1 sb2.1 rf5.0 F5.0 sf5.0 rb3.1 B3.1 sb3.1 "
    "rf6.0 F6.0 sf6.0 rb0.0 B0.0 sb0.0 rf7.0 F7.0 sf7.0 rb1.0 B1.0 sb1.0 "
    "rf4.1 F4.1 sf4.1 rb2.0 B2.0 sb2.0 rf5.1 F5.1 sf5.1 rb3.0 B3.0 sb3.0 "
    "rf6.1 F6.1 sf6.1 rb4.1 B4.1 sb4.1 rf7.1 F7.1 sf7.1 rb5.1 B5.1 sb5.1 "
    "rb6.1 B6.1 sb6.1 rb7.1 B7.1 sb7.1 "
    "rb4.0 B4.0 sb4.0 rb5.0 B5.0 sb5.0 rb6.0 B6.0 sb6.0 rb7.0 B7.0 sb7.0",

    "rf0.0 F0.0 sf0.0 rf1.0 F1.0 sf1.0 rf2.0 F2.0 sf2.0 rf3.0 F3.0 sf3.0 "
    "rf0.1 F0.1 B0.1 sb0.1 rf1.1 F1.1 B1.1 sb1.1 rf2.1 F2.1 B2.1 sb2.1 "
    "rf3.1 F3.1 B3.1 sb3.1 "
    "rf4.0 F4.0 sf4.0 rb0.0 B0.0 sb0.0 rf5.0 F5.0 sf5.0 rb1.0 B1.0 sb1.0 "
    "rf6.0 F6.0 sf6.0 rb2.0 B2.0 sb2.0 rf7.0 F7.0 sf7.0 rb3.0 B3.0 sb3.0 "
    "rf4.1 F4.1 B4.1 sb4.1 rf5.1 F5.1 B5.1 sb5.1 rf6.1 F6.1 B6.1 sb6.1 "
    "rf7.1 F7.1 B7.1 sb7.1 "
    "rb4.0 B4.0 sb4.0 rb5.0 B5.0 sb5.0 rb6.0 B6.0 sb6.0 rb7.0 B7.0 sb7.0",
};

/* The examples printed in parallel.md, without the phase bars. */
static const char *pp4_m6[4] = {
    "F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5",
    "F0 F1 F2 B0 F3 B1 F4 B2 F5 B3 B4 B5",
    "F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 B5",
    "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5",
};

static const char *pp2_vp2_m4[2] = {
    "F0.0 F1.0 F0.1 F1.1 F2.0 B0.1 F3.0 B1.1 F2.1 B0.0 F3.1 B1.0 B2.1 B3.1 B2.0 B3.0",
    "F0.0 F1.0 F0.1 B0.1 F1.1 B1.1 F2.0 B0.0 F3.0 B1.0 F2.1 B2.1 F3.1 B3.1 B2.0 B3.0",
};

static void expect_strings(int pp, int vp, int micro, bool comm, const char **want,
                           const int *warmup)
{
    for (int r = 0; r < pp; r++) {
        struct mb_pipe_sched s;
        if (!ok(mb_pipe_sched_build(&s, pp, r, vp, micro, "test") == 0,
                "PP%d VP%d M%d rank %d builds", pp, vp, micro, r))
            continue;
        char *got = mb_pipe_sched_string(&s, comm);
        is_str(got, want[r], "PP%d VP%d M%d rank %d: %s events", pp, vp, micro, r,
               comm ? "all" : "compute");
        is_int(s.warmup, warmup[r], "PP%d VP%d M%d rank %d: warm-up", pp, vp, micro, r);
        free(got);
        mb_pipe_sched_free(&s);
    }
}

static void literal_schedules(void)
{
    expect_strings(4, 1, 8, true, pp4_m8, (const int[]){ 3, 2, 1, 0 });
    expect_strings(4, 2, 8, true, pp4_vp2_m8, (const int[]){ 10, 8, 6, 4 });
    expect_strings(4, 1, 6, false, pp4_m6, (const int[]){ 3, 2, 1, 0 });
    expect_strings(2, 2, 4, false, pp2_vp2_m4, (const int[]){ 4, 2 });
    expect_strings(1, 1, 3, true, (const char *[]){ "F0 B0 F1 B1 F2 B2" }, (const int[]){ 0 });
    /* fewer micro-batches than stages: all forwards, then all backwards */
    expect_strings(4, 1, 2, false,
                   (const char *[]){ "F0 F1 B0 B1", "F0 F1 B0 B1", "F0 F1 B0 B1",
                                     "F0 B0 F1 B1" },
                   (const int[]){ 2, 2, 1, 0 });
}

/* ---- properties of one rank's list ---- */

static int find(const struct mb_pipe_sched *s, enum mb_pipe_op op, int micro, int chunk,
                int *count)
{
    int at = -1;
    *count = 0;
    for (int i = 0; i < s->n; i++)
        if (s->ev[i].op == op && s->ev[i].micro == micro && s->ev[i].chunk == chunk)
            ++*count, at = i;
    return at;
}

/* Is there a message of OP for (micro, chunk) on this rank? (The header's rules.) */
static bool has_message(const struct mb_pipe_sched *s, enum mb_pipe_op op, int chunk)
{
    bool embedding = s->rank == 0 && chunk == 0;
    bool head = s->rank == s->pp - 1 && chunk == s->vp - 1;
    if (op == MB_PIPE_RECV_FWD || op == MB_PIPE_SEND_BWD)
        return !embedding;
    return !head;
}

/* Every (micro, chunk): one F, one B after it, each message present exactly when the rules
 * say, right before (receives) or right after (sends) its pass. */
static bool passes_ok(const struct mb_pipe_sched *s, char *why, size_t len)
{
    static const enum mb_pipe_op ops[] = { MB_PIPE_RECV_FWD, MB_PIPE_FWD, MB_PIPE_SEND_FWD,
                                           MB_PIPE_RECV_BWD, MB_PIPE_BWD, MB_PIPE_SEND_BWD };
    int events = 0;
    for (int m = 0; m < s->micro; m++)
        for (int c = 0; c < s->vp; c++) {
            int at[6], count[6];
            for (int k = 0; k < 6; k++) {
                at[k] = find(s, ops[k], m, c, &count[k]);
                bool want = ops[k] == MB_PIPE_FWD || ops[k] == MB_PIPE_BWD ||
                            has_message(s, ops[k], c);
                events += count[k];
                if (count[k] != (want ? 1 : 0)) {
                    snprintf(why, len, "(%d,%d): op %d occurs %d times", m, c, k, count[k]);
                    return false;
                }
            }
            if (at[4] < at[1] || (count[0] && at[0] != at[1] - 1) ||
                (count[2] && at[2] != at[1] + 1) || (count[3] && at[3] != at[4] - 1) ||
                (count[5] && at[5] != at[4] + 1)) {
                snprintf(why, len, "(%d,%d): events out of place", m, c);
                return false;
            }
        }
    if (events != s->n) {
        snprintf(why, len, "%d events, %d accounted for", s->n, events);
        return false;
    }
    return true;
}

/* The forwards before the first backward (Megatron's W warm-up forwards and the first
 * steady forward, if there is a steady phase) and the most forwards pending at once. */
static void count_in_flight(const struct mb_pipe_sched *s, int *before_backward, int *most)
{
    int now = 0, before_first = -1;
    *most = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->ev[i].op == MB_PIPE_FWD)
            now++;
        if (s->ev[i].op == MB_PIPE_BWD) {
            if (before_first < 0)
                before_first = now;
            now--;
        }
        *most = MB_MAX(*most, now);
    }
    *before_backward = before_first;
}

/* ---- all ranks together ---- */

enum { DIR_FWD, DIR_BWD };

/* The peer and its chunk that a SEND of (CHUNK) on RANK goes to; the wrap-around moves to
 * the next chunk forwards and the previous one backwards. */
static void send_target(int pp, int rank, int dir, int chunk, int *to, int *to_chunk)
{
    if (dir == DIR_FWD) {
        *to = (rank + 1) % pp;
        *to_chunk = chunk + (rank == pp - 1);
    } else {
        *to = (rank + pp - 1) % pp;
        *to_chunk = chunk - (rank == 0);
    }
}

/* The (micro, chunk-at-receiver) sequence of the messages of DIR that RANK sends, or (with
 * RECV) receives; returns the count. */
static int messages(const struct mb_pipe_sched *s, int dir, bool recv, int *micro, int *chunk)
{
    enum mb_pipe_op op = recv ? (dir == DIR_FWD ? MB_PIPE_RECV_FWD : MB_PIPE_RECV_BWD)
                              : (dir == DIR_FWD ? MB_PIPE_SEND_FWD : MB_PIPE_SEND_BWD);
    int n = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->ev[i].op != op)
            continue;
        int to = s->rank, to_chunk = s->ev[i].chunk;
        if (!recv)
            send_target(s->pp, s->rank, dir, s->ev[i].chunk, &to, &to_chunk);
        micro[n] = s->ev[i].micro, chunk[n] = to_chunk;
        n++;
    }
    return n;
}

/* Each rank's sends of each direction equal, in order, its receiver's receives. */
static bool sends_match_receives(const struct mb_pipe_sched *s, int pp, char *why, size_t len)
{
    bool good = true;
    int cap = 1;
    for (int r = 0; r < pp; r++)
        cap = MB_MAX(cap, s[r].n);
    int *sm = calloc(cap, sizeof *sm), *sc = calloc(cap, sizeof *sc);
    int *rm = calloc(cap, sizeof *rm), *rc = calloc(cap, sizeof *rc);
    for (int r = 0; r < pp && good; r++)
        for (int dir = DIR_FWD; dir <= DIR_BWD && good; dir++) {
            int to = dir == DIR_FWD ? (r + 1) % pp : (r + pp - 1) % pp;
            int ns = messages(&s[r], dir, false, sm, sc);
            int nr = messages(&s[to], dir, true, rm, rc);
            if (ns != nr) {
                snprintf(why, len, "rank %d sends %d %s messages, rank %d receives %d", r, ns,
                         dir == DIR_FWD ? "forward" : "backward", to, nr);
                good = false;
            }
            for (int i = 0; i < ns && good; i++)
                if (sm[i] != rm[i] || sc[i] != rc[i] || sc[i] < 0 || sc[i] >= s[r].vp) {
                    snprintf(why, len, "rank %d -> %d %s message %d: sent (%d,%d), received "
                             "(%d,%d)", r, to, dir == DIR_FWD ? "forward" : "backward", i,
                             sm[i], sc[i], rm[i], rc[i]);
                    good = false;
                }
        }
    free(sm), free(sc), free(rm), free(rc);
    return good;
}

/* Run every rank's list: sends never block, a receive waits until its channel (sender,
 * direction) has delivered more messages than this rank has taken. False on a deadlock. */
static bool runs_without_deadlock(const struct mb_pipe_sched *s, int pp, char *why, size_t len)
{
    int *pc = calloc(pp, sizeof *pc);
    int *sent = calloc(2 * pp, sizeof *sent), *taken = calloc(2 * pp, sizeof *taken);
    int done = 0;
    bool moved = true;
    while (done < pp && moved) {
        moved = false;
        done = 0;
        for (int r = 0; r < pp; r++) {
            while (pc[r] < s[r].n) {
                const struct mb_pipe_event *e = &s[r].ev[pc[r]];
                if (e->op == MB_PIPE_RECV_FWD || e->op == MB_PIPE_RECV_BWD) {
                    int dir = e->op == MB_PIPE_RECV_FWD ? DIR_FWD : DIR_BWD;
                    int from = dir == DIR_FWD ? (r + pp - 1) % pp : (r + 1) % pp;
                    if (sent[2 * from + dir] <= taken[2 * r + dir])
                        break;
                    taken[2 * r + dir]++;
                } else if (e->op == MB_PIPE_SEND_FWD || e->op == MB_PIPE_SEND_BWD) {
                    sent[2 * r + (e->op == MB_PIPE_SEND_FWD ? DIR_FWD : DIR_BWD)]++;
                }
                pc[r]++;
                moved = true;
            }
            done += pc[r] == s[r].n;
        }
    }
    if (done < pp) {
        int len_used = snprintf(why, len, "deadlock at");
        for (int r = 0; r < pp && len_used < (int)len; r++)
            len_used += snprintf(why + len_used, len - len_used, " rank %d event %d/%d", r,
                                 pc[r], s[r].n);
    }
    free(pc), free(sent), free(taken);
    return done == pp;
}

/* Check every property of one layout: one TAP line. */
static void layout(int pp, int vp, int micro)
{
    struct mb_pipe_sched *s = calloc(pp, sizeof *s);
    char why[512] = "";
    bool good = true;
    for (int r = 0; r < pp && good; r++) {
        if (mb_pipe_sched_build(&s[r], pp, r, vp, micro, "test") != 0) {
            snprintf(why, sizeof why, "rank %d: %s", r, mb_err_what());
            good = false;
            break;
        }
        int before, most, total = micro * vp;
        count_in_flight(&s[r], &before, &most);
        if (!passes_ok(&s[r], why, sizeof why)) {
            good = false;
        } else if (before != s[r].warmup + (s[r].warmup < total) ||
                   most != s[r].max_in_flight) {
            snprintf(why, sizeof why, "rank %d: %d forwards before the first backward, %d in "
                     "flight; warm-up %d, %d in flight reported", r, before, most,
                     s[r].warmup, s[r].max_in_flight);
            good = false;
        } else if (vp == 1 && micro >= pp && most != pp - r) {
            snprintf(why, sizeof why, "rank %d: %d micro-batches in flight, 1F1B keeps p - r "
                     "= %d", r, most, pp - r);
            good = false;
        } else if (vp == 1 && most > pp - r) {
            snprintf(why, sizeof why, "rank %d: %d in flight > p - r", r, most);
            good = false;
        }
    }
    if (good)
        good = sends_match_receives(s, pp, why, sizeof why) &&
               runs_without_deadlock(s, pp, why, sizeof why);
    ok(good, "PP%d VP%d M%d: passes, messages, sends = receives, no deadlock%s%s", pp, vp,
       micro, good ? "" : ": ", why);
    for (int r = 0; r < pp; r++)
        mb_pipe_sched_free(&s[r]);
    free(s);
}

static void layouts(void)
{
    for (int pp = 1; pp <= 8; pp++)
        for (int micro = 1; micro <= 3 * pp + 2; micro++)
            layout(pp, 1, micro);
    for (int pp = 2; pp <= 8; pp++)
        for (int vp = 2; vp <= 4; vp++)
            for (int micro = pp; micro <= 4 * pp; micro += pp)
                layout(pp, vp, micro);
}

/* ---- refusals ---- */

static void refused(int pp, int rank, int vp, int micro, const char *want)
{
    struct mb_pipe_sched s;
    mb_err_clear();
    int rc = mb_pipe_sched_build(&s, pp, rank, vp, micro, "dist");
    ok(rc == -1 && strcmp(mb_err_where(), "dist") == 0 && strstr(mb_err_what(), want) != NULL,
       "PP%d rank %d VP%d M%d refused: %s", pp, rank, vp, micro, mb_err_what());
    ok(s.ev == NULL && s.n == 0, "  ... with nothing allocated");
    mb_pipe_sched_free(&s);
}

static void refusals(void)
{
    refused(4, 0, 2, 6, "a multiple of dist.pipeline_model_parallel_size 4");
    refused(4, 3, 2, 6, "train.global_batch_size");
    refused(4, 1, 2, 2, "at least 4; it is 2");
    refused(8, 0, 3, 12, "dist.virtual_pipeline_model_parallel_size 3");
    refused(1, 0, 2, 4, "dist.virtual_pipeline_model_parallel_size 2 needs "
                        "dist.pipeline_model_parallel_size > 1");
    refused(4, 4, 1, 8, "0 <= rank < stages");
    refused(2, 0, 1, 0, "0 <= rank < stages");
    refused(0, 0, 1, 4, "at least one");
}

int main(void)
{
    literal_schedules();
    layouts();
    refusals();
    return tap_done();
}
