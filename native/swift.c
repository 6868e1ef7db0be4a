/* swift.c: Swift, C twin of congestion/swift.py (keep the two in step).
 *
 * Kumar et al., "Swift: Delay is Simple and Effective for Congestion Control in the Datacenter",
 * SIGCOMM'20, as htsim models it (Broadcom/csg-htsim sim/swift.cpp): a delay target that grows
 * with the path's hop count and shrinks with the
 * window (flow-based scaling), additive increase of ai packets per RTT below the target, and a
 * multiplicative decrease proportional to the excess delay, at most once per RTT, bounded by
 * max_mdf; a retransmission (timeout or NAK) cuts by max_mdf. Below one packet of window the
 * NIC paces at cwnd per RTT, but no slower than the rate floor (SD_MIN_RATE_BPS, 1 Mb/s: a
 * ConnectX rate limiter's minimum). Window and pacing in bytes / bit/s; the fabric-wide pieces
 * (base_target_ps, max_cwnd_bytes) come from the scenario.
 *
 * State: [0] cwnd (bytes), [1] time of the last decrease (ps), [2] last RTT sample (ps),
 * [3] last target (ps). */
#include <math.h>

#include "sim.h"

enum { CWND, LAST_DEC, RTT, TARGET };

static const char *const params[] = {"ai", "beta", "max_mdf", "base_target_ps", "hop_scale_ps", "fs_range_ps",
                                     "fs_min_cwnd", "fs_max_cwnd", "min_cwnd_bytes", "max_cwnd_bytes", NULL};

static const char *validate(const double *p, char *why, size_t len)
{
    CC_NEED(p[0] > 0.0, 0, "> 0");
    CC_NEED(p[1] > 0.0 && p[1] <= 1.0, 1, "in (0, 1]");
    CC_NEED(p[2] > 0.0 && p[2] < 1.0, 2, "in (0, 1)");
    CC_NEED(p[3] > 0.0, 3, "> 0");
    CC_NEED(p[4] >= 0.0, 4, ">= 0");
    CC_NEED(p[5] >= 0.0, 5, ">= 0");
    CC_NEED(p[6] > 0.0, 6, "> 0 (packets)");
    CC_NEED(p[7] > p[6], 7, "> fs_min_cwnd (packets)");
    CC_NEED(p[8] > 0.0, 8, "> 0");
    CC_NEED(p[9] > p[8] && p[9] <= CC_MAX_BYTES, 9, "> min_cwnd_bytes and <= 1e+15");
    return NULL;
}

static double target_delay(const double *p, double cwnd_pkts, double hops)
{
    double fs_range = p[5];
    double fs_alpha = fs_range / (1.0 / sqrt(p[6]) - 1.0 / sqrt(p[7]));
    double fs_beta = -fs_alpha / sqrt(p[7]);
    double fs = fs_alpha / sqrt(cwnd_pkts) + fs_beta;
    if (fs < 0.0)
        fs = 0.0;
    if (fs > fs_range)
        fs = fs_range;
    return p[3] + hops * p[4] + fs;
}

static void event(const double *p, double *s, sd_cc_io *io)
{
    double ai = p[0], beta = p[1], max_mdf = p[2], min_cwnd = p[8], max_cwnd = p[9];
    double mss = (double)io->mtu_payload, now = (double)io->now_ps;
    if (io->event == SD_EV_START) {
        s[CWND] = max_cwnd / 2.0;                  /* one BDP: max_cwnd is 2 x BDP */
        s[LAST_DEC] = -1e18;
        s[RTT] = p[3];
        s[TARGET] = p[3];
    } else if (io->event == SD_EV_ACK && io->rtt_ps >= 0) {
        double delay = (double)io->rtt_ps, cwnd = s[CWND];
        double target = target_delay(p, cwnd / mss, (double)io->hops);
        s[RTT] = delay;
        s[TARGET] = target;
        if (delay < target) {
            if (cwnd >= mss)
                cwnd = cwnd + ai * mss * (double)io->acked_bytes / cwnd;
            else
                cwnd = cwnd + ai * (double)io->acked_bytes;
        } else if (now - s[LAST_DEC] >= delay) {
            double f = 1.0 - beta * (delay - target) / delay;
            if (f < 1.0 - max_mdf)
                f = 1.0 - max_mdf;
            cwnd = cwnd * f;
            s[LAST_DEC] = now;
        }
        if (cwnd < min_cwnd)
            cwnd = min_cwnd;
        if (cwnd > max_cwnd)
            cwnd = max_cwnd;
        s[CWND] = cwnd;
    } else if ((io->event == SD_EV_TIMEOUT || io->event == SD_EV_NAK) && now - s[LAST_DEC] >= s[RTT]) {
        double cwnd = s[CWND] * (1.0 - max_mdf);
        s[CWND] = cwnd < min_cwnd ? min_cwnd : cwnd;
        s[LAST_DEC] = now;
    }
    double cwnd = s[CWND];
    io->window_bytes = (uint64_t)(cwnd < 1.0 ? 1.0 : cwnd);
    io->rate_bps = cwnd >= mss ? io->line_rate_bps : cwnd * 8.0 / (s[RTT] * 1e-12);
    if (io->rate_bps > io->line_rate_bps)
        io->rate_bps = io->line_rate_bps;
    if (io->rate_bps < SD_MIN_RATE_BPS)
        io->rate_bps = SD_MIN_RATE_BPS;           /* the NIC's rate limiter paces no slower */
    io->trace[0] = cwnd;
    io->trace[1] = s[TARGET];
    io->trace[2] = s[RTT];
    io->trace[3] = s[LAST_DEC];
}

const cc_twin cc_swift = {"swift", params, validate, event};
