/* qdisc.h: the queue-discipline registry, one line per discipline (an X-macro list).
 *
 * X(name) registers the provider `const qdisc_ops qd_<name>` defined in its own file
 * (native/qdisc_<name>.c or qdisc.c for the built-ins; dataplane/build.py compiles every
 * native/qdisc_*.c it finds). From this list sim.h declares the providers, qdisc.c builds
 * qdisc_table[] and the enum below gives each its index QDISC_KIND_<name> (the order of the
 * lines; stored in sd_port.qdisc[prio]). drop_tail must stay first and red_ecn second: sd_set_queue
 * installs them by the fixed indices of softdpu.h. Each provider declares its parameters (sim.h
 * qdisc_param: name, kind, closed range, rule; e.g. qdisc.c's red_params), which sd_set_qdisc
 * checks every value against before the provider's validate. Python discovers the kinds and those
 * declarations from the table (sd_qdisc_count, sd_qdisc_name, sd_qdisc_param_name / _kind /
 * _range / _rule), and its config model in controlplane/fabric/qdisc.py is checked against them
 * at import (names, kinds, bounds). docs/extending.md. */
#ifndef SOFTDPU_QDISC_H
#define SOFTDPU_QDISC_H

#define SD_QDISCS(X)                                                                                     \
    X(drop_tail)          /* qdisc.c: FIFO, drop at the byte capacity (the default) */                 \
    X(red_ecn)            /* qdisc.c: + RED-style ECN marking at dequeue (DCQCN's CP) */                \
    X(codel_ecn)          /* qdisc_codel.c: + CoDel (RFC 8289) ECN marking at dequeue */                \
    X(traffic_class)      /* qdisc_tc.c: 8 classes from DSCP, strict priority + DWRR (the whole port) */

#define SD_QDISC_KIND_(name) QDISC_KIND_##name,
enum sd_qdisc_index { SD_QDISCS(SD_QDISC_KIND_) SD_NUM_QDISC };
#undef SD_QDISC_KIND_

#endif
