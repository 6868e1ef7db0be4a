/* dcqcn.c: the DCQCN reaction point, C twin of congestion/dcqcn.py (keep the two in step: a
 * differential test requires identical decision traces). Two flavours:
 *
 * paper  - Zhu et al., "Congestion Control for Large-Scale RDMA Deployments", SIGCOMM'15, RP
 *          algorithm: decrease on every CNP, alpha
 *          timer K, rate-increase timer T and byte counter B, fast recovery for F stages, then
 *          additive, then hyper increase x i.
 * nvidia - ConnectX-firmware-like, as modelled by the HPCC repo's *Mlx functions (rdma-hw.cc):
 *          CNPs only set flags; alpha updated every alpha_period,
 *          decrease checked every dec_period, timer-only increase with F stages.
 * The ECN thresholds and NP settings each flavour declares are in congestion/dcqcn.py
 * (ECN_DEFAULTS); the NP itself is in nic.c.
 *
 * State (cc_state): [0] RC current rate, [1] RT target rate, [2] alpha, [3] timer stage,
 * [4] byte stage, [5] first CNP seen, [6] CNP since last alpha update, [7] CNP since last
 * decrease check. Timers: 0 alpha, 1 rate increase, 2 rate decrease check. */
#include "sim.h"

enum { RC, RT, ALPHA, TSTAGE, BSTAGE, STARTED, ALPHA_CNP, DEC_CNP };
enum { T_ALPHA = 0, T_INC = 1, T_DEC = 2 };

/* Parameters, in the order of the block Python passes (sd_add_cc_params). */
static const char *const params[] = {
    "g", "rai_bps", "rhai_bps", "rmin_bps", "initial_alpha", "rate_on_first_cnp", "alpha_period_ps",
    "inc_period_ps", "dec_period_ps", "byte_counter", "flavour", "fast_recovery", "clamp_target", NULL};

typedef struct dcqcn_params {
    double g;                    /* alpha EWMA gain */
    double rai_bps;              /* additive increase step */
    double rhai_bps;             /* hyper increase step */
    double rmin_bps;             /* rate floor */
    double initial_alpha;
    double rate_on_first_cnp;    /* nvidia flavour: RC = RT = this x RC on the first CNP */
    int64_t alpha_period_ps;     /* paper K (alpha timer); nvidia: alpha update period */
    int64_t inc_period_ps;       /* rate-increase timer T */
    int64_t dec_period_ps;       /* nvidia: rate-decrease check period */
    uint64_t byte_counter;       /* paper B; 0 = off */
    uint32_t flavour;            /* 0 = paper (Zhu et al. SIGCOMM'15), 1 = nvidia (HPCC repo *Mlx) */
    uint32_t fast_recovery;      /* F */
    uint32_t clamp_target;       /* RT <- RC on every decrease (else only when a stage counter > 0) */
} dcqcn_params;

static dcqcn_params unpack(const double *v)
{
    dcqcn_params p = {v[0], v[1], v[2], v[3], v[4], v[5], (int64_t)v[6], (int64_t)v[7], (int64_t)v[8],
                      (uint64_t)v[9], (uint32_t)v[10], (uint32_t)v[11], (uint32_t)v[12]};
    return p;
}

static const char *validate(const double *p, char *why, size_t len)
{
    CC_NEED(p[0] > 0.0 && p[0] <= 1.0, 0, "in (0, 1]");
    CC_NEED(p[1] >= 0.0, 1, ">= 0");
    CC_NEED(p[2] >= 0.0, 2, ">= 0");
    CC_NEED(p[3] >= SD_MIN_RATE_BPS, 3, CC_RULE_RATE);
    CC_NEED(p[4] >= 0.0 && p[4] <= 1.0, 4, "in [0, 1]");
    CC_NEED(p[5] > 0.0 && p[5] <= 1.0, 5, "in (0, 1]");
    CC_NEED(p[6] >= 1.0 && p[6] <= CC_MAX_PS, 6, "in [1, 1e+15] ps");
    CC_NEED(p[7] >= 1.0 && p[7] <= CC_MAX_PS, 7, "in [1, 1e+15] ps");
    if (p[10] == 1.0)                /* the nvidia flavour's decrease check needs a period */
        CC_NEED(p[8] >= 1.0 && p[8] <= CC_MAX_PS, 8, "in [1, 1e+15] ps");
    else
        CC_NEED(p[8] >= 0.0 && p[8] <= CC_MAX_PS, 8, "in [0, 1e+15] ps");
    CC_NEED(p[9] >= 0.0 && p[9] <= CC_MAX_BYTES, 9, "in [0, 1e+15] bytes");
    CC_NEED(p[10] == 0.0 || p[10] == 1.0, 10, "0 (paper) or 1 (nvidia)");
    CC_NEED(p[11] >= 0.0 && p[11] <= 1e6, 11, "in [0, 1e+06]");
    CC_NEED(p[12] == 0.0 || p[12] == 1.0, 12, "0 or 1");
    return NULL;
}

static void paper_increase(const dcqcn_params *p, double *s, double line)
{
    double mx = s[TSTAGE] > s[BSTAGE] ? s[TSTAGE] : s[BSTAGE];
    double mn = s[TSTAGE] < s[BSTAGE] ? s[TSTAGE] : s[BSTAGE];
    double f = (double)p->fast_recovery;
    if (mx < f) {
        /* fast recovery: RT unchanged */
    } else if (mn >= f) {
        s[RT] += (mn - f + 1.0) * p->rhai_bps;   /* hyper increase, step x i */
    } else {
        s[RT] += p->rai_bps;                      /* additive increase */
    }
    if (s[RT] > line)
        s[RT] = line;
    s[RC] = (s[RT] + s[RC]) / 2.0;
    if (s[RC] > line)
        s[RC] = line;
}

static void paper_event(const dcqcn_params *p, double *s, sd_cc_io *io)
{
    double line = io->line_rate_bps;
    switch (io->event) {
    case SD_EV_CNP:
        s[STARTED] = 1.0;
        if (p->clamp_target || s[TSTAGE] != 0.0 || s[BSTAGE] != 0.0)
            s[RT] = s[RC];
        s[RC] = s[RC] * (1.0 - s[ALPHA] / 2.0);
        if (s[RC] < p->rmin_bps)
            s[RC] = p->rmin_bps;
        s[ALPHA] = (1.0 - p->g) * s[ALPHA] + p->g;
        s[TSTAGE] = 0.0;
        s[BSTAGE] = 0.0;
        io->timer_at[T_INC] = io->now_ps + p->inc_period_ps;
        io->timer_at[T_ALPHA] = io->now_ps + p->alpha_period_ps;
        io->byte_threshold = p->byte_counter;
        io->byte_reset = 1;
        break;
    case SD_EV_TIMER:
        if (io->timer_id == T_ALPHA) {
            s[ALPHA] = (1.0 - p->g) * s[ALPHA];
            io->timer_at[T_ALPHA] = io->now_ps + p->alpha_period_ps;
        } else if (io->timer_id == T_INC) {
            s[TSTAGE] += 1.0;
            paper_increase(p, s, line);
            io->timer_at[T_INC] = io->now_ps + p->inc_period_ps;
        }
        break;
    case SD_EV_BYTES:
        s[BSTAGE] += 1.0;
        paper_increase(p, s, line);
        break;
    default:
        break;
    }
}

static void nvidia_event(const dcqcn_params *p, double *s, sd_cc_io *io)
{
    double line = io->line_rate_bps;
    switch (io->event) {
    case SD_EV_CNP:
        s[ALPHA_CNP] = 1.0;
        s[DEC_CNP] = 1.0;
        if (s[STARTED] == 0.0) {
            s[STARTED] = 1.0;
            s[ALPHA] = p->initial_alpha;
            s[ALPHA_CNP] = 0.0;
            io->timer_at[T_ALPHA] = io->now_ps + p->alpha_period_ps;
            /* +1 ns so the first decrease check runs after an alpha update (HPCC repo) */
            io->timer_at[T_DEC] = io->now_ps + p->dec_period_ps + 1000;
            s[RC] = p->rate_on_first_cnp * s[RC];
            s[RT] = s[RC];
        }
        break;
    case SD_EV_TIMER:
        if (io->timer_id == T_ALPHA) {
            if (s[ALPHA_CNP] != 0.0)
                s[ALPHA] = (1.0 - p->g) * s[ALPHA] + p->g;
            else
                s[ALPHA] = (1.0 - p->g) * s[ALPHA];
            s[ALPHA_CNP] = 0.0;
            io->timer_at[T_ALPHA] = io->now_ps + p->alpha_period_ps;
        } else if (io->timer_id == T_DEC) {
            io->timer_at[T_DEC] = io->now_ps + p->dec_period_ps;
            if (s[DEC_CNP] != 0.0) {
                if (p->clamp_target || s[TSTAGE] != 0.0)
                    s[RT] = s[RC];
                s[RC] = s[RC] * (1.0 - s[ALPHA] / 2.0);
                if (s[RC] < p->rmin_bps)
                    s[RC] = p->rmin_bps;
                s[TSTAGE] = 0.0;
                s[DEC_CNP] = 0.0;
                io->timer_at[T_INC] = io->now_ps + p->inc_period_ps;
            }
        } else if (io->timer_id == T_INC) {
            io->timer_at[T_INC] = io->now_ps + p->inc_period_ps;
            double f = (double)p->fast_recovery;
            if (s[TSTAGE] == f)
                s[RT] += p->rai_bps;                  /* additive increase */
            else if (s[TSTAGE] > f)
                s[RT] += p->rhai_bps;                 /* hyper increase (no x i) */
            if (s[RT] > line)
                s[RT] = line;
            s[RC] = (s[RT] + s[RC]) / 2.0;            /* fast recovery when stage < F */
            s[TSTAGE] += 1.0;
        }
        break;
    default:
        break;
    }
}

static void event(const double *v, double *s, sd_cc_io *io)
{
    dcqcn_params pp = unpack(v);
    const dcqcn_params *p = &pp;
    if (io->event == SD_EV_START) {
        s[RC] = io->line_rate_bps;
        s[RT] = io->line_rate_bps;
        s[ALPHA] = p->initial_alpha;
        s[TSTAGE] = s[BSTAGE] = s[STARTED] = s[ALPHA_CNP] = s[DEC_CNP] = 0.0;
    } else if (p->flavour == 0) {
        paper_event(p, s, io);
    } else {
        nvidia_event(p, s, io);
    }
    io->rate_bps = s[RC];
    io->trace[0] = s[RT];
    io->trace[1] = s[ALPHA];
    io->trace[2] = s[TSTAGE];
    io->trace[3] = s[BSTAGE];
}

const cc_twin cc_dcqcn = {"dcqcn", params, validate, event};
