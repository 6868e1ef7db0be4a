/* hpcc.c: HPCC, C twin of congestion/hpcc.py (keep the two in step).
 *
 * Li et al., "HPCC: High Precision Congestion Control", SIGCOMM'19, Algorithm 1, as the HPCC
 * repository runs it (alibaba-edu/High-Precision-Congestion-Control,
 * simulation/src/point-to-point/model/rdma-hw.cc::UpdateRateHp, single-rate mode). Per ACK carrying
 * the INT of the acknowledged packet: for each hop,
 * tau = time delta (24-bit ns, unwrapped), txRate = byte delta x 8 / tau, u = txRate/B +
 * min(qlen, qlen_prev) x line / (B x W_init); take the hop with the largest u; U <- (1 - tau/T) U
 * + tau/T u with tau capped at T; then R = R_c/(U/eta) + R_AI if U >= eta or after max_stage
 * additive steps, else R = R_c + R_AI; R_c and the stage are committed once per window
 * (when the cumulative ACK passes the sequence sent at the last commit), every other ACK only
 * reacts (fast react). Window W = W_init x R / line (VAR_WIN); the NIC paces at R.
 * Hops with a zero time delta (the same INT seen twice) are skipped rather than divided by.
 *
 * State: [0] R_c, [1] stage, [2] U, [3] last commit sequence, [4] hops stored,
 * [5..9] previous time, [10..14] previous bytes, [15..19] previous qlen. */
#include "sim.h"

enum { CUR, STAGE, UTIL, LAST, NPREV, PTIME = 5, PBYTES = 10, PQLEN = 15 };

static const char *const params[] = {"eta", "max_stage", "rai_bps", "rmin_bps", "base_rtt_ps", "win_bytes",
                                     "int_multi", "fast_react", NULL};
static const double rates[] = {25e9, 50e9, 100e9, 200e9, 400e9};

static const char *validate(const double *p, char *why, size_t len)
{
    CC_NEED(p[0] > 0.0 && p[0] <= 1.0, 0, "in (0, 1]");
    CC_NEED(p[1] >= 0.0, 1, ">= 0");
    CC_NEED(p[2] >= 0.0, 2, ">= 0");
    CC_NEED(p[3] >= SD_MIN_RATE_BPS, 3, CC_RULE_RATE);
    CC_NEED(p[4] > 0.0, 4, "> 0 (the scenario computes it from the fabric)");
    CC_NEED(p[5] > 0.0 && p[5] <= CC_MAX_BYTES, 5, "in (0, 1e+15] bytes (the scenario computes it from the fabric)");
    CC_NEED(p[6] >= 1.0 && p[6] <= 64.0, 6, "in [1, 64]");
    CC_NEED(p[7] == 0.0 || p[7] == 1.0, 7, "0 or 1");
    return NULL;
}

static void event(const double *p, double *s, sd_cc_io *io)
{
    double eta = p[0], max_stage = p[1], rai = p[2], rmin = p[3], T = p[4], win = p[5], multi = p[6];
    double line = io->line_rate_bps, rate = io->rate_bps;
    if (io->event == SD_EV_START) {
        s[CUR] = line;
        s[STAGE] = 0.0;
        s[UTIL] = 1.0;
        s[LAST] = s[NPREV] = 0.0;
        io->rate_bps = line;
        io->window_bytes = (uint64_t)win;
        return;
    }
    if (io->event != SD_EV_ACK || io->int_nhop == 0 || io->int_nhop > SD_INT_HOPS)
        return;
    double ack = (double)io->snd_una, nxt = (double)io->snd_nxt;
    int fast = !(ack > s[LAST]);
    if (fast && p[7] == 0.0)
        return;
    uint32_t n = io->int_nhop;
    if (s[LAST] == 0.0) {                           /* first window: remember the INT */
        for (uint32_t i = 0; i < n; i++) {
            s[PTIME + i] = (double)io->int_hop[i].time;
            s[PBYTES + i] = (double)io->int_hop[i].bytes;
            s[PQLEN + i] = (double)io->int_hop[i].qlen;
        }
        s[NPREV] = (double)n;
        s[LAST] = nxt;
        return;
    }
    double U = 0.0, dt = 0.0;
    int any = 0;
    for (uint32_t i = 0; i < n; i++) {
        const sd_int_hop *h = &io->int_hop[i];
        double tau = (double)((h->time - (uint32_t)s[PTIME + i]) & 0xFFFFFFu);            /* ns */
        double bytes = (double)((h->bytes - (uint32_t)s[PBYTES + i]) & 0xFFFFFu) * 128.0 * multi;
        double qlen = (double)(h->qlen < (uint32_t)s[PQLEN + i] ? h->qlen : (uint32_t)s[PQLEN + i]) * 80.0 * multi;
        s[PTIME + i] = (double)h->time;
        s[PBYTES + i] = (double)h->bytes;
        s[PQLEN + i] = (double)h->qlen;
        if (tau <= 0.0)
            continue;
        double B = rates[h->rate_idx < 5 ? h->rate_idx : 4];
        double u = bytes * 8.0 / (tau * 1e-9) / B + qlen * line / B / win;
        any = 1;
        if (u > U) {
            U = u;
            dt = tau * 1000.0;                      /* ps */
        }
    }
    s[NPREV] = (double)n;
    if (any) {
        if (dt > T)
            dt = T;
        s[UTIL] = (s[UTIL] * (T - dt) + U * dt) / T;
        double max_c = s[UTIL] / eta, new_rate, new_stage;
        if (max_c >= 1.0 || s[STAGE] >= max_stage) {
            new_rate = s[CUR] / max_c + rai;
            new_stage = 0.0;
        } else {
            new_rate = s[CUR] + rai;
            new_stage = s[STAGE] + 1.0;
        }
        if (new_rate < rmin)
            new_rate = rmin;
        if (new_rate > line)
            new_rate = line;
        rate = new_rate;
        if (!fast) {
            s[CUR] = new_rate;
            s[STAGE] = new_stage;
        }
    }
    if (!fast && nxt > s[LAST])
        s[LAST] = nxt;
    io->rate_bps = rate;
    io->window_bytes = (uint64_t)(win * rate / line);
    io->trace[0] = s[CUR];
    io->trace[1] = s[STAGE];
    io->trace[2] = s[UTIL];
    io->trace[3] = U;
}

const cc_twin cc_hpcc = {"hpcc", params, validate, event};
