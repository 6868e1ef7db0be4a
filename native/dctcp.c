/* dctcp.c: DCTCP in the rate domain, C twin of congestion/dctcp.py (keep the two in step).
 *
 * Alizadeh et al., SIGCOMM'10 / RFC 8257, as the HPCC repository runs it for RDMA
 * (simulation/src/point-to-point/model/rdma-hw.cc::HandleAckDctcp): once per window of
 * packets alpha <- (1-g) alpha + g F, F the fraction of ACKs that echoed CE; on an echo outside
 * CWR the rate is cut to R (1 - alpha/2) and CWR lasts until the packets in flight at the cut are
 * acknowledged; otherwise each new window adds R_AI. Sequence numbers count packets here (the
 * HPCC code counts bytes and divides by the MTU). Switches mark with a step at K.
 *
 * State: [0] alpha, [1] last update sequence, [2] window size in packets, [3] ECN echoes in the
 * window, [4] in CWR, [5] CWR exit sequence. */
#include "sim.h"

enum { ALPHA, LAST, BATCH, ECNS, CWR, HIGH };

static const char *const params[] = {"g", "rai_bps", "rmin_bps", "initial_alpha", NULL};

static const char *validate(const double *p, char *why, size_t len)
{
    CC_NEED(p[0] > 0.0 && p[0] <= 1.0, 0, "in (0, 1]");
    CC_NEED(p[1] >= 0.0, 1, ">= 0");
    CC_NEED(p[2] >= SD_MIN_RATE_BPS, 2, CC_RULE_RATE);
    CC_NEED(p[3] >= 0.0 && p[3] <= 1.0, 3, "in [0, 1]");
    return NULL;
}

static void event(const double *p, double *s, sd_cc_io *io)
{
    double g = p[0], rai = p[1], rmin = p[2];
    double rate = io->rate_bps;
    if (io->event == SD_EV_START) {
        s[ALPHA] = p[3];
        s[LAST] = s[BATCH] = s[ECNS] = s[CWR] = s[HIGH] = 0.0;
        rate = io->line_rate_bps;
    } else if (io->event == SD_EV_ACK) {
        double ack = (double)io->snd_una, nxt = (double)io->snd_nxt;
        int new_batch = 0;
        s[ECNS] += io->ecn ? 1.0 : 0.0;
        if (ack > s[LAST]) {                        /* a window of feedback is complete */
            new_batch = 1;
            if (s[LAST] == 0.0) {
                s[LAST] = nxt;
                s[BATCH] = nxt + 1.0;
            } else {
                double frac = s[ECNS] / s[BATCH];
                if (frac > 1.0)
                    frac = 1.0;
                s[ALPHA] = (1.0 - g) * s[ALPHA] + g * frac;
                s[LAST] = nxt;
                s[ECNS] = 0.0;
                s[BATCH] = (nxt - ack) + 1.0;
            }
        }
        if (s[CWR] != 0.0 && ack > s[HIGH])
            s[CWR] = 0.0;
        if (io->ecn && s[CWR] == 0.0) {
            rate = rate * (1.0 - s[ALPHA] / 2.0);
            if (rate < rmin)
                rate = rmin;
            s[CWR] = 1.0;
            s[HIGH] = nxt;
        }
        if (s[CWR] == 0.0 && new_batch) {
            rate = rate + rai;
            if (rate > io->line_rate_bps)
                rate = io->line_rate_bps;
        }
    }
    io->rate_bps = rate;
    io->trace[0] = s[ALPHA];
    io->trace[1] = s[CWR];
    io->trace[2] = s[ECNS];
    io->trace[3] = s[BATCH];
}

const cc_twin cc_dctcp = {"dctcp", params, validate, event};
