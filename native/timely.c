/* timely.c: TIMELY, C twin of congestion/timely.py (keep the two in step).
 *
 * Mittal et al., SIGCOMM'15, as the HPCC repository runs it
 * (simulation/src/point-to-point/model/rdma-hw.cc::UpdateRateTimely): once per window of packets,
 * with the RTT of the
 * acknowledged packet: rtt_diff <- (1-a) rtt_diff + a (rtt - prev_rtt), gradient = rtt_diff /
 * min_rtt; below T_low add R_AI; above T_high cut by 1 - beta (1 - T_high/rtt); otherwise add
 * R_AI (R_HAI after 5 increases in a row) if the gradient is <= 0, else cut by 1 - beta gradient.
 * Between window boundaries nothing changes (the HPCC code's fast reaction is empty).
 *
 * State: [0] current rate, [1] increases in a row, [2] rtt_diff (ps), [3] previous RTT (ps),
 * [4] last update sequence. */
#include "sim.h"

enum { CUR, STAGE, DIFF, PREV, LAST };

static const char *const params[] = {"alpha", "beta", "t_low_ps", "t_high_ps", "min_rtt_ps", "rai_bps", "rhai_bps",
                                     "rmin_bps", "hai_threshold", NULL};

static const char *validate(const double *p, char *why, size_t len)
{
    CC_NEED(p[0] > 0.0 && p[0] <= 1.0, 0, "in (0, 1]");
    CC_NEED(p[1] > 0.0 && p[1] <= 1.0, 1, "in (0, 1]");
    CC_NEED(p[2] >= 0.0, 2, ">= 0");
    CC_NEED(p[3] > p[2], 3, "> t_low_ps");
    CC_NEED(p[4] > 0.0, 4, "> 0");
    CC_NEED(p[5] >= 0.0, 5, ">= 0");
    CC_NEED(p[6] >= 0.0, 6, ">= 0");
    CC_NEED(p[7] >= SD_MIN_RATE_BPS, 7, CC_RULE_RATE);
    CC_NEED(p[8] >= 0.0, 8, ">= 0");
    return NULL;
}

static void event(const double *p, double *s, sd_cc_io *io)
{
    double a = p[0], beta = p[1], t_low = p[2], t_high = p[3], min_rtt = p[4];
    double rai = p[5], rhai = p[6], rmin = p[7], hai_after = p[8];
    double rate = io->rate_bps;
    if (io->event == SD_EV_START) {
        s[CUR] = io->line_rate_bps;
        s[STAGE] = s[DIFF] = s[PREV] = s[LAST] = 0.0;
        rate = io->line_rate_bps;
    } else if (io->event == SD_EV_ACK && io->rtt_ps >= 0 && (double)io->snd_una > s[LAST]) {
        double rtt = (double)io->rtt_ps, nxt = (double)io->snd_nxt;
        if (s[LAST] != 0.0) {
            double rtt_diff = (1.0 - a) * s[DIFF] + a * (rtt - s[PREV]);
            double gradient = rtt_diff / min_rtt;
            int inc;
            double c = 0.0;
            if (rtt < t_low) {
                inc = 1;
            } else if (rtt > t_high) {
                c = 1.0 - beta * (1.0 - t_high / rtt);
                inc = 0;
            } else if (gradient <= 0.0) {
                inc = 1;
            } else {
                c = 1.0 - beta * gradient;
                if (c < 0.0)
                    c = 0.0;
                inc = 0;
            }
            if (inc) {
                rate = s[CUR] + (s[STAGE] < hai_after ? rai : rhai);
                if (rate > io->line_rate_bps)
                    rate = io->line_rate_bps;
                s[STAGE] += 1.0;
            } else {
                rate = s[CUR] * c;
                if (rate < rmin)
                    rate = rmin;
                s[STAGE] = 0.0;
            }
            s[CUR] = rate;
            s[DIFF] = rtt_diff;
        }
        if (nxt > s[LAST]) {
            s[LAST] = nxt;
            s[PREV] = rtt;
        }
    }
    io->rate_bps = rate;
    io->trace[0] = s[CUR];
    io->trace[1] = s[STAGE];
    io->trace[2] = s[DIFF];
    io->trace[3] = s[PREV];
}

const cc_twin cc_timely = {"timely", params, validate, event};
