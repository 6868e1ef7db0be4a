/* nscc.c: UEC NSCC (Ultra Ethernet Transport 1.0 sender-side CC), C twin of congestion/nscc.py.
 *
 * As the UEC htsim model implements it (htsim/sim/src/protocols/uec.cpp, read in the public copy
 * atseis/uet-htsim: initNsccParams, updateCwndOnAck_NSCC, quick_adapt, fulfill_adjustment,
 * updateCwndOnNack_NSCC). Per ACK, with delay = RTT - base RTT and skip = the ACK echoes ECN:
 *   no ECN, delay >= target: fair increase      inc += fi x acked
 *   no ECN, delay <  target: proportional incr. inc += alpha x acked x (target - delay)
 *                            (fast increase instead: cwnd += fi_scale x acked once the delay has
 *                             stayed under 1 us for a whole window)
 *   ECN,    delay >= target: multiplicative decrease, once per base RTT:
 *                            cwnd *= max(1 - gamma (avg_delay - target)/avg_delay, 0.5)
 *   ECN,    delay <  target: nothing (a path change in UET)
 * fulfil: after 8 MTU of acknowledged bytes or one network RTT, cwnd += inc/cwnd (+ eta once per
 * network RTT); quick adapt: on loss or a delay above 4 x target, if less than maxwnd/8 was
 * acknowledged in the last base RTT + target, cwnd = what was acknowledged. A NAK (softdpu's
 * go-back-N NAK) counts as the loss of one packet. cwnd is kept in [MTU, 1.5 x BDP]; the NIC
 * sends at line rate within the window. The base RTT follows the smallest RTT seen.
 *
 * State: [0] cwnd, [1] inc bytes, [2] received bytes, [3] achieved bytes, [4] quick-adapt end,
 * [5] last fulfil, [6] last decrease, [7] avg delay, [8] fast-increase count, [9] fast increase
 * on, [10] bytes to ignore, [11] bytes ignored, [12] base RTT, [13] trigger quick adapt. */
#include "sim.h"

enum { CWND, INC, RECV, ACHIEVED, QA_END, LAST_ADJ, LAST_DEC, AVG_DELAY, FI_COUNT, INCREASE, TO_IGNORE,
       IGNORED, BASE_RTT, TRIGGER };

static const char *const params[] = {"network_rtt_ps", "target_qdelay_ps", "gamma", "delay_alpha", "qa_gate",
                                     "header_bytes", NULL};

static const char *validate(const double *p, char *why, size_t len)
{
    CC_NEED(p[0] > 0.0 && p[0] <= CC_MAX_PS, 0, "in (0, 1e+15] ps (the scenario computes it from the fabric)");
    CC_NEED(p[1] > 0.0 && p[1] <= CC_MAX_PS, 1, "in (0, 1e+15] ps (the scenario computes it from the fabric)");
    CC_NEED(p[2] > 0.0 && p[2] <= 1.0, 2, "in (0, 1]");
    CC_NEED(p[3] > 0.0 && p[3] <= 1.0, 3, "in (0, 1]");
    CC_NEED(p[4] >= 0.0 && p[4] <= 16.0, 4, "in [0, 16]");
    CC_NEED(p[5] >= 0.0 && p[5] <= 1e6, 5, "in [0, 1e+06] bytes");
    return NULL;
}

typedef struct nscc {
    double mss, mtu, target, net_rtt, line, a, b, alpha, fi, eta, fi_scale, gamma, delay_alpha;
    double qa_threshold, adjust_bytes, maxwnd, min_cwnd;
    uint32_t qa_gate;
} nscc;

static nscc derive(const double *p, const sd_cc_io *io, double base_rtt)
{
    nscc k;
    k.mss = (double)io->mtu_payload;
    k.mtu = k.mss + p[5];
    k.net_rtt = p[0];
    k.target = p[1];
    k.line = io->line_rate_bps;
    double ref_bdp = 12e-6 * 100e9 / 8.0;                   /* reference network: 100 Gb/s x 12 us */
    double net_bdp = k.net_rtt * 1e-12 * k.line / 8.0;
    k.a = net_bdp / ref_bdp;
    k.b = k.target / 12e6;
    k.alpha = 4.0 * k.mss * k.a * k.b / k.target;          /* bytes per ps */
    k.fi = 5.0 * k.mss * k.a;
    k.eta = 0.15 * k.mss * k.a;
    k.fi_scale = 0.25 * k.a;
    k.gamma = p[2];
    k.delay_alpha = p[3];
    k.qa_gate = (uint32_t)p[4];
    k.qa_threshold = 4.0 * k.target;
    k.adjust_bytes = 8.0 * k.mtu;
    k.maxwnd = 1.5 * (base_rtt * 1e-12 * k.line / 8.0);
    k.min_cwnd = k.mtu;
    return k;
}

static void bounds(const nscc *k, double *s)
{
    if (s[CWND] < k->min_cwnd)
        s[CWND] = k->min_cwnd;
    if (s[CWND] > k->maxwnd)
        s[CWND] = k->maxwnd;
}

static void update_delay(const nscc *k, double *s, double raw_rtt, int skip)
{
    double delay = raw_rtt - s[BASE_RTT];
    if (!skip && delay > k->target)
        s[AVG_DELAY] = k->delay_alpha * s[BASE_RTT] * 0.25 + (1.0 - k->delay_alpha) * s[AVG_DELAY];
    else
        s[AVG_DELAY] = k->delay_alpha * delay + (1.0 - k->delay_alpha) * s[AVG_DELAY];
}

static int quick_adapt(const nscc *k, double *s, double now, int is_loss, int skip, double delay, double inflight)
{
    int done = 0;
    if (s[IGNORED] < s[TO_IGNORE] && skip) {
        done = 1;
    } else if (now > s[QA_END]) {
        if (s[QA_END] != 0.0 && (s[TRIGGER] != 0.0 || is_loss || delay > k->qa_threshold) &&
            s[ACHIEVED] < k->maxwnd / (double)(1u << k->qa_gate)) {
            s[CWND] = s[ACHIEVED] > k->min_cwnd ? s[ACHIEVED] : k->min_cwnd;
            s[TO_IGNORE] = inflight;
            s[IGNORED] = 0.0;
            s[TRIGGER] = 0.0;
            done = 1;
        }
        s[ACHIEVED] = 0.0;
        s[QA_END] = now + s[BASE_RTT] + k->target;
    }
    if (done) {
        s[INC] = 0.0;
        s[RECV] = 0.0;
    }
    return done;
}

static void event(const double *p, double *s, sd_cc_io *io)
{
    double now = (double)io->now_ps, inflight = (double)io->inflight_bytes;
    if (io->event == SD_EV_START) {
        for (int i = 0; i < SD_CC_STATE; i++)
            s[i] = 0.0;
        s[BASE_RTT] = p[0];
        nscc k = derive(p, io, s[BASE_RTT]);
        s[CWND] = k.maxwnd;
        s[LAST_DEC] = -1e18;
    } else if (io->event == SD_EV_ACK && io->rtt_ps >= 0) {
        double raw = (double)io->rtt_ps, acked = (double)io->acked_bytes;
        int skip = io->ecn != 0;
        if (raw < s[BASE_RTT])
            s[BASE_RTT] = raw;                           /* update_base_rtt */
        nscc k = derive(p, io, s[BASE_RTT]);
        update_delay(&k, s, raw, skip);
        double delay = raw - s[BASE_RTT];
        s[ACHIEVED] += acked;
        s[RECV] += acked;
        if (skip && s[IGNORED] < s[TO_IGNORE])
            s[IGNORED] += acked;
        if (!quick_adapt(&k, s, now, 0, skip, delay, inflight)) {
            if (!skip && delay >= k.target) {
                s[INC] += k.fi * acked;                  /* fair increase */
            } else if (!skip) {
                if (delay < 1e6) {                       /* fast increase: under 1 us for a window */
                    s[FI_COUNT] += acked;
                    if (s[FI_COUNT] > s[CWND] || s[INCREASE] != 0.0) {
                        s[CWND] += acked * k.fi_scale;
                        s[INCREASE] = 1.0;
                    } else {
                        s[INCREASE] = 0.0;
                    }
                } else {
                    s[FI_COUNT] = 0.0;
                    s[INCREASE] = 0.0;
                }
                if (s[INCREASE] == 0.0)
                    s[INC] += k.alpha * acked * (k.target - delay);   /* proportional increase */
            } else if (delay >= k.target) {
                s[INCREASE] = 0.0;
                s[FI_COUNT] = 0.0;
                double avg = s[AVG_DELAY];
                if (avg > k.target && now - s[LAST_DEC] > s[BASE_RTT]) {
                    double f = 1.0 - k.gamma * (avg - k.target) / avg;
                    s[CWND] *= f > 0.5 ? f : 0.5;        /* multiplicative decrease */
                    if (s[CWND] < k.min_cwnd)
                        s[CWND] = k.min_cwnd;
                    s[LAST_DEC] = now;
                }
            }
            bounds(&k, s);
            if (s[RECV] > k.adjust_bytes || now - s[LAST_ADJ] > k.net_rtt) {     /* fulfil */
                s[CWND] += s[INC] / s[CWND];
                if (now - s[LAST_ADJ] >= k.net_rtt) {
                    s[CWND] += k.eta;
                    s[LAST_ADJ] = now;
                }
                s[INC] = 0.0;
                s[RECV] = 0.0;
            }
            bounds(&k, s);
        }
    } else if (io->event == SD_EV_NAK || io->event == SD_EV_TIMEOUT) {
        nscc k = derive(p, io, s[BASE_RTT]);
        double nacked = k.mtu;                            /* go-back-N NAK: one packet lost */
        s[IGNORED] += nacked;
        update_delay(&k, s, s[BASE_RTT] + k.net_rtt, 1);
        s[TRIGGER] = 1.0;
        if (!quick_adapt(&k, s, now, 1, 1, 0.0, inflight)) {
            s[CWND] -= nacked;
            bounds(&k, s);
        }
    }
    io->window_bytes = (uint64_t)s[CWND];
    io->rate_bps = io->line_rate_bps;
    io->trace[0] = s[CWND];
    io->trace[1] = s[AVG_DELAY];
    io->trace[2] = s[INC];
    io->trace[3] = s[BASE_RTT];
}

const cc_twin cc_nscc = {"nscc", params, validate, event};
