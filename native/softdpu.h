/* softdpu.h: the public header of the softdpu data plane: commands (function prototypes), the
 * configuration struct, error and stop codes, and the stable telemetry records Python views.
 *
 * dataplane/build.py feeds this file verbatim to cffi's cdef(): it must stay free of
 * preprocessor lines, macros and static inline functions. The simulator's working state is not
 * here: it lives in native/sim.h (private), and test/benchmark hooks in native/softdpu_testing.h
 * (cdef'd apart, testing only). The C sources include all three through native/sim.h.
 *
 * Units: time is int64 picoseconds, rates are bits per second, sizes are bytes.
 * Node numbering: hosts are nodes 0 .. num_hosts-1, switches are the nodes after them. Each node
 * has a kind (enum sd_node_kind, set by sd_set_nodes) and the list of its ports (sd_node_ports):
 * the data plane decides host versus switch by kind, never by number.
 * Port numbering: link i owns port 2*i (at its node a) and port 2*i+1 (at its node b).
 */

/* ---------------------------------------------------------------- return codes */
enum sd_status {
    SD_OK = 0,
    SD_EINVAL = -1,         /* an argument is out of range; sd_last_error() names it */
    SD_ENOMEM = -2,         /* a pool or table sized at creation is full */
    SD_ESTATE = -3,         /* call not allowed in the simulator's current state */
    SD_ECALLBACK = -4,      /* a Python congestion-control plug-in raised */
    SD_ECC = -5,            /* a congestion control set a rate below SD_MIN_RATE_BPS (or not a
                             * number) or armed a timer at or before now; sd_last_error() names the
                             * CC, the QP and the event */
    SD_ESTALL = -6          /* no progress: more events at one simulated instant than the stall limit
                             * (sd_set_stall_limit); sd_last_error() names the last event */
};

/* The rate floor, bit/s: no pacing rate, link rate or CC rate parameter may be lower. 1 Mb/s is
 * the smallest rate a ConnectX QP rate limiter takes (DCQCN's rpg_min_rate: 1 Mb/s .. line rate).
 * It bounds every serialization time: a 9 KB jumbo frame (plus headers, VXLAN) takes < 80 ms at
 * the floor, so pacing advances time by a bounded step per packet and every run stays finite;
 * below 1 bit/s the old integer rate truncated to 0 and the serialization helper divided by it. */
enum { SD_MIN_RATE_BPS = 1000000 };

/* Why sd_run_until() returned (values >= 0). */
enum sd_stop {
    SD_STOP_TIME = 0,        /* the requested time was reached */
    SD_STOP_IDLE = 1,        /* no event left (time stays at the last event) */
    SD_STOP_COMPLETIONS = 2, /* the completion ring needs draining by the control plane */
    SD_STOP_UPCALL = 3,      /* vSwitch misses wait for the control plane (sd_vs_drain_upcalls) */
    SD_STOP_EVENTS = 4,      /* sd_set_run_budget's chunk of events ran in this call: the control plane
                              * may look at its wall clock and call again (nothing else changed) */
    SD_STOP_MAX_EVENTS = 5,  /* sd_set_run_budget's max_events events have run: the run stops between
                              * two events (a consistent state); a larger budget lets it go on */
    SD_STOP_WALL = 6         /* sd_set_wall_budget's wall-clock deadline has passed: the run stops
                              * between two events (a consistent state) */
};

/* Priority classes of an egress queue; lower value is served first. */
enum sd_prio {
    SD_PRIO_CTRL = 0,        /* ACK, NAK, CNP */
    SD_PRIO_DATA = 1,        /* RDMA data */
    SD_NUM_PRIO = 2
};

/* Queue disciplines of a port's priority queue: providers registered in native/qdisc.h (one line
 * each), discovered by name with their declared parameters (sd_qdisc_count, sd_qdisc_name,
 * sd_qdisc_param_name / _kind / _range / _rule). Only the two that sd_set_queue installs have
 * fixed indices here; the others' indices follow their lines. */
enum sd_qdisc_builtin {
    SD_QDISC_DROP_TAIL = 0,  /* FIFO, drop at the byte capacity (the default) */
    SD_QDISC_RED_ECN = 1     /* + RED-style ECN marking at dequeue (DCQCN's CP) */
};
#define SD_QDISC_PARAMS 32

/* Built-in congestion controls (C twins) and the Python plug-in hook. */
enum sd_cc_kind {
    SD_CC_NONE = 0,          /* line rate, no reaction */
    SD_CC_DCQCN = 1,         /* native/dcqcn.c */
    SD_CC_PYTHON = 2,        /* every CC event calls sd_cc_python_event() */
    SD_CC_DCTCP = 3,         /* native/dctcp.c */
    SD_CC_TIMELY = 4,        /* native/timely.c */
    SD_CC_HPCC = 5,          /* native/hpcc.c */
    SD_CC_SWIFT = 6,         /* native/swift.c */
    SD_CC_NSCC = 7,          /* native/nscc.c */
    SD_NUM_CC = 8
};

/* How a receiver (DCQCN's notification point) reports CE marks. */
enum sd_cnp_mode {
    SD_CNP_INTERVAL = 0,     /* a CNP packet, at most one per QP per cnp_interval_ps (DCQCN paper) */
    SD_CNP_ACK_ECHO = 1,     /* the ACK carries BECN; the sender treats it as a CNP (HPCC repo's Mellanox model) */
    SD_CNP_NONE = 2          /* no feedback of CE marks (a QP's NIC setting only: sd_set_qp_nic) */
};

/* Congestion-control events (sd_cc_io.event). */
enum sd_cc_event_type {
    SD_EV_START = 0,         /* the QP gets its first message: initialise state */
    SD_EV_ACK = 1,           /* cumulative ACK advanced or echoed ECN */
    SD_EV_CNP = 2,           /* congestion notification (CNP packet or BECN on an ACK) */
    SD_EV_NAK = 3,           /* PSN sequence error NAK: go-back-N follows */
    SD_EV_TIMEOUT = 4,       /* retransmission timeout fired */
    SD_EV_TIMER = 5,         /* one of the CC's timers fired (timer_id says which) */
    SD_EV_BYTES = 6,         /* byte_threshold payload bytes were sent since the last reset */
    SD_NUM_EV = 7
};

/* Transport modes of a QP (native/reorder.c): go-back-N as RoCE NICs do; selective repeat as in
 * IRN (NACK per out-of-order packet carrying expected and triggering PSN, retransmit only holes);
 * out-of-order placement as SRD / NVIDIA OOO (no NACK: SACKed ACKs, retransmission on timeout). */
enum sd_transport { SD_GBN = 0, SD_SR = 1, SD_OOO = 2 };
/* Path policies (native/paths.c registry, one native/path_*.c each): the entropy (UDP source port)
 * of each data packet. A policy is named by its index in the registry: sd_path_policy_name. */
enum { SD_MAX_PATHS = 16, SD_MAX_REORDER_WINDOW = 32768 };
/* sr/ooo retransmission timing granularity: a lost packet is declared lost between RTO and
 * RTO x (1 + 1/SD_RTO_EPOCHS) after its latest transmission (reorder.c; sd_qp.ep_end has
 * SD_RTO_EPOCHS + 1 entries) */
enum { SD_RTO_EPOCHS = 8 };
/* sd_packet.flags: bit 0 BTH AckReq; bit 1 adaptive-routing eligible (set by the NIC per class);
 * bits 2..6 = 1 + the path slot of a data packet, echoed by the ACK that acknowledges it (UEC-style
 * entropy echo; 0 = none); bit 7 on an ACK: the acknowledged data packet arrived CE-marked; bit 7
 * on a data packet: it is a retransmission (counted apart when dropped). */
enum { SD_PKT_ACKREQ = 1, SD_PKT_AR = 2, SD_PKT_SLOT_SHIFT = 2, SD_PKT_SLOT_MASK = 0x7C, SD_PKT_CE_ECHO = 0x80,
       SD_PKT_RTX = 0x80 };
enum { SD_CC_TIMERS = 4, SD_CC_STATE = 24, SD_CC_TRACE = 4, SD_CC_PARAMS = 16, SD_INT_HOPS = 5 };

/* RoCEv2 BTH opcodes of the RC transport (IBTA Vol. 1 §9.2 Table 38, RC prefix 000). Headers after
 * the BTH: RETH on WRITE First/Only (with or without immediate) and the READ request; ImmDt on the
 * "with Immediate" opcodes; AETH on READ response First/Last/Only and on ACK/NAK. */
enum sd_opcode {
    SD_OP_SEND_FIRST = 0,
    SD_OP_SEND_MIDDLE = 1,
    SD_OP_SEND_LAST = 2,
    SD_OP_SEND_LAST_IMM = 3,
    SD_OP_SEND_ONLY = 4,
    SD_OP_SEND_ONLY_IMM = 5,
    SD_OP_WRITE_FIRST = 6,
    SD_OP_WRITE_MIDDLE = 7,
    SD_OP_WRITE_LAST = 8,
    SD_OP_WRITE_LAST_IMM = 9,
    SD_OP_WRITE_ONLY = 10,
    SD_OP_WRITE_ONLY_IMM = 11,
    SD_OP_READ_REQ = 12,
    SD_OP_READ_RESP_FIRST = 13,
    SD_OP_READ_RESP_MIDDLE = 14,
    SD_OP_READ_RESP_LAST = 15,
    SD_OP_READ_RESP_ONLY = 16,
    SD_OP_ACK = 17,
    SD_OP_ATOMIC_ACK = 18,       /* AETH + AtomicAckETH (the original remote data) */
    SD_OP_CMP_SWAP = 19,         /* AtomicETH: address, key, swap data, compare data */
    SD_OP_FETCH_ADD = 20,        /* AtomicETH: address, key, add data */
    SD_OP_CNP = 129,
    SD_OP_PFC = 255              /* not RoCE: an 802.1Qbb frame (MAC control, opcode 0x0101) */
};

/* The RDMA operation of a message (sd_msg.verb, sd_post_msgs). */
enum sd_verb {
    SD_VERB_WRITE = 0,           /* RDMA WRITE: completes at the requester when acknowledged */
    SD_VERB_WRITE_IMM = 1,       /* RDMA WRITE with immediate: also consumes a posted receive and completes
                                  * at the responder */
    SD_VERB_SEND = 2,            /* SEND: consumes a posted receive, completes at both ends */
    SD_VERB_SEND_IMM = 3,        /* SEND with immediate */
    SD_VERB_READ = 4,            /* RDMA READ: one request; the responder streams READ responses back;
                                  * completes at the requester when the last response arrives */
    SD_VERB_ATOMIC_CAS = 5,      /* ATOMIC compare-and-swap of the responder's 64-bit word (8 bytes) */
    SD_VERB_ATOMIC_FADD = 6,     /* ATOMIC fetch-and-add */
    SD_NUM_VERBS = 7
};

/* AETH syndromes (IBTA Vol. 1 §9.7.5.1.1, Table 45): ACK (credit field 11111: no credit), RNR NAK
 * (001 + the 5-bit RNR timer code), NAK PSN sequence error. */
enum { SD_SYN_ACK = 0x1F, SD_SYN_RNR = 0x20, SD_SYN_NAK_SEQ = 0x60 };

/* Completion kinds and statuses (sd_completion). */
enum { SD_CQ_REQUESTER = 0, SD_CQ_RESPONDER = 1 };
enum { SD_WC_SUCCESS = 0, SD_WC_RNR_RETRY_EXC = 1, SD_WC_FLUSH = 2 };

/* ---------------------------------------------------------------- configuration */
typedef struct sd_config {
    uint32_t num_hosts;          /* nodes 0 .. num_hosts-1 */
    uint32_t num_switches;       /* nodes num_hosts .. num_hosts+num_switches-1 */
    uint32_t max_links;
    uint32_t max_qps;            /* initial QP table size (grows when full) */
    uint32_t max_msgs;           /* initial message table size (grows when full) */
    uint32_t pkt_pool;           /* packets preallocated; a full pool drops (counted) */
    uint32_t mtu_payload;        /* payload bytes per data packet */
    uint32_t ack_interval;       /* receiver ACKs every n-th data packet (and every AckReq) */
    uint32_t cnp_mode;           /* enum sd_cnp_mode */
    uint32_t completion_ring;    /* capacity of the completion ring */
    uint32_t wake_on_completion; /* 1: sd_run_until returns SD_STOP_COMPLETIONS when one is queued */
    uint32_t trace_capacity;     /* CC decision-trace records kept (0 = off) */
    uint32_t phy_overhead;       /* preamble+SFD+IFG bytes per frame on the wire (20 for Ethernet) */
    uint32_t int_enabled;        /* 1: switches stamp HPCC INT on data packets, ACKs echo it */
    uint32_t int_multi;          /* HPCC INT_MULTI: byte unit 128 x this, qlen unit 80 x this */
    uint32_t ipv6;               /* 1: RoCEv2 over IPv6 (40-byte IP header), 0: IPv4 */
    uint32_t dscp_data;          /* DSCP of data packets, ACKs/NAKs and CNPs (wire encoding) */
    uint32_t dscp_ack;
    uint32_t dscp_cnp;
    uint32_t payload_pattern;    /* capture payload bytes: 0 zeros, 1 (remote address + offset) mod 256 */
    int64_t cnp_interval_ps;     /* SD_CNP_INTERVAL: minimum gap between CNPs of one QP */
    int64_t rto_ps;              /* retransmission timeout */
    uint64_t seed;               /* root of every RNG stream */
} sd_config;

/* ---------------------------------------------------------------- Python-visible state */
/* A packet. Fields mirror the RoCEv2 headers it carries on the wire (native/wire.c turns them
 * into bytes); next_arrive_ps, ts_ps and next are simulator bookkeeping. 64 bytes, one cache line. */
typedef struct sd_packet {
    int64_t next_arrive_ps;      /* on a wire: when the packet behind it on the same wire arrives
                                  * (set as that one is put on the wire: the wire head's arrival
                                  * schedules the next one without loading it) */
    int64_t ts_ps;               /* data: time sent; ACK: echo of the acked packet's ts_ps */
    uint32_t next;               /* intrusive list link (queue, wire or free list) */
    uint32_t src;                /* source address (IP source; = the host by default: sd_set_addresses) */
    uint32_t dst;                /* destination address (IP destination; = the host by default: sd_set_addresses) */
    uint32_t dqp;                /* BTH DestQP (a QP index) */
    uint32_t psn;                /* BTH PSN, 24-bit */
    uint32_t msn;                /* AETH MSN (ACK/NAK) */
    uint32_t payload;            /* payload bytes */
    uint32_t msg;                /* data: its message (RETH, payload offset); ACK/NAK of an sr/ooo QP:
                                  * the PSN that triggered it (SACK), else UINT32_MAX */
    uint32_t in_port;            /* at a switch: the port it arrived on (PFC accounting), else UINT32_MAX */
    uint16_t sport;              /* UDP source port: ECMP entropy */
    uint16_t wire;               /* bytes on the wire, phy overhead included */
    uint8_t opcode;              /* BTH opcode (enum sd_opcode) */
    uint8_t prio;                /* enum sd_prio */
    uint8_t ecn;                 /* IP ECN codepoint */
    uint8_t becn;                /* BTH BECN (CNP, or an ACK echoing CE) */
    uint8_t flags;               /* SD_PKT_*: BTH AckReq (encoded), and the simulator's own marks (not
                                  * encoded): AR eligibility, path slot, CE echo */
    uint8_t syndrome;            /* AETH syndrome: 0x1F ACK, 0x60 NAK (PSN sequence error) */
    uint8_t ttl;                 /* IP TTL / hop limit, decremented by each switch */
    uint8_t hops;                /* ACK: switch hops the acknowledged packet crossed (from its TTL) */
} sd_packet;


/* ---------------------------------------------------------------- telemetry records
 * The stable per-object records Python reads (sd_ports, sd_qps, sd_path_states give views of
 * them). Each is an array of its own, indexed like its object; the simulator's working state
 * (sd_port, sd_qp, sd_path_state in native/sim.h) is not visible here and may change freely.
 * Counters and gauges live only in the record: the data plane updates them there in place.
 * Configuration fields are copied into the record by the setter that sets them (setup time). */

/* Per port (egress side of a link end), indexed like the ports. */
typedef struct sd_port_stats {
    /* gauges and counters, hot first */
    uint64_t q_bytes[2];         /* bytes queued per priority (not counting the one in service) */
    uint64_t tx_bytes;           /* wire bytes transmitted (incl. phy overhead) */
    uint64_t tx_packets;
    uint64_t rx_packets;         /* packets that arrived at this port's node through the peer */
    uint64_t q_peak[2];          /* highest q_bytes seen */
    uint8_t paused;              /* PFC: bit p = priority p may not transmit (XOFF received) */
    uint8_t pause_sent;          /* PFC: bit p = this port asked its upstream to pause priority p */
    uint8_t up;                  /* configuration: 1 = link up */
    uint8_t qdisc[2];            /* configuration: discipline per priority (index: sd_qdisc_name) */
    uint8_t pad0[3];
    uint64_t ecn_marked;         /* packets CE-marked at dequeue */
    uint64_t dropped;            /* packets dropped at enqueue (queue full) */
    uint64_t dropped_bytes;
    uint64_t down_drops;         /* packets lost because the link was down */
    uint64_t pfc_tx;             /* PFC frames (pause and resume) sent to the upstream port */
    uint64_t pfc_rx;             /* PFC frames received */
    uint64_t pauses;             /* XOFF frames received (pause events at this egress) */
    int64_t paused_ps;           /* time the data priority spent paused */
    int64_t paused_since;        /* start of the current pause, -1 if not paused */
    uint64_t in_bytes;           /* PFC ingress accounting of a switch port (data priority): bytes
                                  * that arrived here and are still buffered in the switch */
    uint64_t hdrm_bytes;         /* ... of which in the headroom */
    /* configuration */
    uint64_t rate_bps;
    int64_t delay_ps;            /* propagation delay of the link */
    uint32_t node;               /* owner node */
    uint32_t peer;               /* port at the other end of the link */
    uint64_t kmin[2];            /* ECN: RED Kmin/Kmax bytes per priority (red_ecn) */
    uint64_t kmax[2];
    double pmax[2];              /* RED Pmax per priority (0 disables marking) */
    uint64_t pad1[4];            /* a record is four cache lines: its hot first line stays aligned */
} sd_port_stats;

/* Per QP (one end of a connected pair), indexed like the QPs. */
typedef struct sd_qp_stats {
    /* line 0, the sender's hot line: congestion control (what the NIC applies now, written by the
     * CC through sd_cc_io) and the counters of each data packet and ACK */
    double rate_bps;             /* pacing rate */
    uint64_t window_bytes;       /* max unacked payload bytes, 0 = no window */
    uint64_t sent_bytes;         /* payload bytes sent, retransmissions included */
    uint64_t sent_packets;
    uint64_t acked_bytes;        /* payload bytes cumulatively acknowledged */
    uint64_t cc_events;
    uint64_t cnps_rx;            /* congestion notifications received (CNP packets or BECN ACKs) */
    uint64_t posted_bytes;
    /* line 1, the receiver's hot line */
    uint64_t rx_bytes;           /* in-order payload bytes received */
    uint64_t rx_packets;
    uint64_t ce_rx;
    uint64_t cnps_tx;
    uint32_t epsn;               /* expected PSN (24-bit) */
    uint32_t msn;                /* messages completed at the receiver (24-bit on the wire) */
    uint32_t ooo_held;           /* PSNs held beyond the expected PSN now */
    uint32_t ooo_peak;           /* ... at most */
    uint64_t rx_ooo;             /* packets beyond a gap (gbn drops them, sr/ooo hold them) */
    uint64_t naks_tx;
    /* line 2: rarer events */
    uint64_t retx_packets;
    uint64_t timeouts;
    uint64_t naks_rx;
    uint64_t sacks_rx;           /* ACK/NAKs received that carried a SACK */
    uint64_t data_dropped;       /* this QP's data packets dropped in the fabric (any cause) */
    uint64_t retx_dropped;       /* ... of which retransmissions */
    uint64_t rx_dup;             /* duplicates (already received PSNs) */
    uint64_t rx_late;            /* packets beyond the reorder window (dropped) */
    /* line 3 on: configuration */
    uint32_t ooo_max_dist;       /* largest distance of a packet beyond the expected PSN */
    uint32_t host;               /* local host node */
    uint32_t port;               /* local NIC port */
    uint32_t peer_host;
    uint32_t peer_qp;
    uint32_t isn;                /* initial PSN (24-bit) */
    uint32_t cc_kind;            /* enum sd_cc_kind */
    uint32_t cc_param;           /* index of the parameter block of the built-in CC */
    uint32_t sport;              /* UDP source port (ECMP entropy) */
    uint16_t mode;               /* enum sd_transport */
    uint16_t ar;                 /* SD_AR_CLASS_* mask: packet classes this QP marks AR-eligible */
    uint32_t reorder_window;     /* sr/ooo: PSNs tracked beyond the cumulative point */
    uint32_t path_policy;        /* index in the path-policy registry (sd_path_policy_name) */
    uint32_t npaths;             /* entropies in paths[], 0 = the QP's sport only */
    uint32_t rto_low_pkts;       /* sr/ooo: use rto_low_ps while at most this many packets are out */
    uint32_t bdp_cap;            /* sr/ooo: IRN's BDP-FC, at most this many packets out (0 = off) */
    uint32_t ack_interval;       /* the QP's NIC settings (sd_set_qp_nic; else the simulator's): as receiver,
                                  * ACK every n-th data packet; mtu_payload, cnp_mode, rto_ps, cnp_interval_ps below */
    int64_t rto_low_ps;          /* IRN's RTO_low (0 = always the QP's rto_ps) */
    /* verbs (native/nic.c) */
    uint64_t rq_posted;          /* receives posted at this end (responder); UINT64_MAX = unlimited */
    uint64_t read_resp_bytes;    /* responder: READ response payload bytes sent */
    uint32_t rq_used;            /* receives consumed by SENDs / WRITEs with immediate */
    uint32_t recv_msgs;          /* requester: messages posted that consume a receive (the next rq_index) */
    uint32_t rx_completions;     /* responder completions (SEND / WRITE with immediate arrived whole) */
    uint32_t rnr_naks_tx;        /* RNR NAKs sent (a SEND found no receive posted) */
    uint32_t rnr_naks_rx;
    uint16_t mtu_payload;        /* the QP's NIC settings, continued */
    uint8_t cnp_mode;            /* enum sd_cnp_mode */
    uint8_t nak_off;             /* 1 = as go-back-N receiver, no NAK at a gap (sd_set_qp_nak) */
    int64_t rto_ps;
    int64_t cnp_interval_ps;
} sd_qp_stats;

/* Per-path telemetry of a QP with a path set (native/paths.c), indexed like the QPs: what the
 * control plane reads at its ticks, and the policy parameters it gave. */
typedef struct sd_path_stats {
    uint16_t entropy[16];        /* slot i's UDP source port (the path set; sd_get_paths: with weights) */
    uint64_t sent[16];           /* data packets sent on slot i */
    uint64_t acks[16];           /* ACK/NAKs that echoed slot i */
    uint64_t ce[16];             /* ... of which echoed a CE mark */
    int64_t rtt_ps[16];          /* last RTT sample through slot i, -1 none */
    uint64_t timeouts[16];       /* RTOs whose oldest outstanding packet went on slot i */
    uint64_t reps_explored;      /* reps: packets that took a random slot (nothing to recycle) */
    uint64_t repaths;            /* plb repaths / flowlets started */
    /* the built-in policies' parameters (sd_set_path_param / sd_set_path_params); a policy's
     * parameters by its own names: sd_get_paths */
    int64_t flowlet_gap_ps;      /* flowlet: a new path after an idle gap longer than this */
    double plb_cong_thresh;      /* plb: a round is congested above this CE fraction */
    uint32_t plb_rehash_rounds;  /* plb: repath after this many congested rounds in a row */
    uint32_t pad0;
    int64_t plb_suspend_ps;      /* plb: after an RTO repath, none for [1, 2) x this */
} sd_path_stats;

/* A message (an RDMA WRITE, SEND or READ: verb) posted on a QP. */
typedef struct sd_msg {
    int64_t post_ps;             /* when the application posted it */
    int64_t first_tx_ps;         /* first packet left the NIC, -1 before */
    int64_t finish_ps;           /* last byte acknowledged at the sender, -1 before */
    uint64_t bytes;
    uint64_t start_seq;          /* sequence number (64-bit PSN count) of its first packet */
    uint32_t npkts;
    uint32_t qp;
    uint32_t next;               /* next message on the same QP, UINT32_MAX = none */
    uint32_t rq_index;           /* SEND / WRITE with immediate: which receive of the responder it consumes
                                  * (0, 1, ... per QP in posting order; the WQE sequence number) */
    int64_t rx_done_ps;          /* SEND / WRITE with immediate: completed at the responder, -1 before */
    uint8_t verb;                /* enum sd_verb */
    uint8_t status;              /* SD_WC_*: how it completed at the requester */
    uint16_t pad0;
    uint32_t pad1;
    uint64_t atomic_value;       /* ATOMIC: the swap (compare-and-swap) or add (fetch-and-add) operand */
    uint64_t atomic_compare;     /* ATOMIC compare-and-swap: the compare operand */
    uint64_t atomic_orig;        /* ATOMIC: the responder word's value before the operation (returned) */
} sd_msg;



/* One INT hop record, in the HPCC repository's encoding (int-header.h): the egress timestamp in
 * ns mod 2^24, the port's cumulative tx bytes in units of 128 x int_multi mod 2^20, its queue
 * in units of 80 x int_multi (17 bits, saturating), and the line rate as an index into
 * {25, 50, 100, 200, 400} Gb/s. */
typedef struct sd_int_hop {
    uint32_t time;
    uint32_t bytes;
    uint32_t qlen;
    uint32_t rate_idx;
} sd_int_hop;

/* Input/output of one congestion-control event: the built-in C twins and Python plug-ins see
 * exactly this. Inputs describe the event; outputs are read back after the handler returns. */
typedef struct sd_cc_io {
    int64_t now_ps;
    int64_t rtt_ps;              /* ACK: RTT sample of the acked packet, -1 if none */
    uint64_t acked_bytes;        /* ACK: payload bytes newly acknowledged */
    uint64_t inflight_bytes;     /* payload bytes sent and not yet acknowledged */
    uint64_t snd_una;            /* packets cumulatively acknowledged (sequence number, 64-bit) */
    uint64_t snd_nxt;            /* sequence number of the next packet to send */
    uint32_t qp;
    uint32_t event;              /* enum sd_cc_event_type */
    uint32_t timer_id;           /* SD_EV_TIMER: which timer */
    uint32_t ecn;                /* ACK: 1 if it echoes CE (ECN-echo / BECN) */
    uint32_t hops;               /* ACK: switch hops of the acknowledged packet's path */
    uint32_t mtu_payload;        /* the NIC's payload bytes per packet (MSS) */
    uint32_t batch_acks;         /* ACK: ACKs this event stands for (> 1 with ack_batch) */
    uint32_t batch_ecn;          /* ACK: ... of which echoed ECN (ecn = batch_ecn > 0) */
    int64_t rtt_min_ps;          /* ACK: smallest RTT sample of the batch (rtt_ps is the last) */
    double line_rate_bps;
    uint32_t int_nhop;           /* ACK with INT enabled: hops pushed on the acked packet (mod 5 wraps) */
    uint32_t pad1;
    sd_int_hop int_hop[5];       /* ... their records */
    /* in/out */
    double rate_bps;             /* pacing rate, clamped by C to (0, line rate] */
    uint64_t window_bytes;       /* 0 = no window */
    int64_t timer_at[4];         /* deadline per timer, -1 = off; assign to arm/re-arm/cancel */
    uint64_t byte_threshold;     /* SD_EV_BYTES period in payload bytes, 0 = off */
    uint32_t byte_reset;         /* out: 1 = restart the byte count from zero */
    uint32_t pad0;
    double trace[4];             /* out: algorithm state recorded in the decision trace */
} sd_cc_io;

/* One CC decision, recorded after each CC event when the trace is on. */
typedef struct sd_cc_trace {
    int64_t t_ps;
    double rate_bps;
    uint64_t window_bytes;
    double v[4];                 /* sd_cc_io.trace as the algorithm left it */
    uint32_t qp;
    uint32_t event;
} sd_cc_trace;


/* A message completion, as queued to the completion ring. */
typedef struct sd_completion {
    int64_t t_ps;
    uint32_t msg;
    uint32_t qp;                 /* the QP it completed on (the responder's QP for SD_CQ_RESPONDER) */
    uint16_t kind;               /* SD_CQ_REQUESTER (the message is done) or SD_CQ_RESPONDER (a SEND or WRITE
                                  * with immediate consumed a receive and arrived whole) */
    uint16_t status;             /* SD_WC_* */
    uint32_t pad0;
} sd_completion;

/* Totals over the whole fabric. Conservation: data_sent = data_delivered + data_dropped +
 * data_in_flight, where in flight means in a queue or on a wire. */
typedef struct sd_counters {
    uint64_t events;
    uint64_t data_sent;          /* data packets that left a NIC (retransmissions included) */
    uint64_t data_delivered;     /* data packets that reached their destination NIC */
    uint64_t data_dropped;       /* data packets dropped anywhere (queue full, link down, random loss, vSwitch) */
    uint64_t ctrl_sent;          /* ACK/NAK/CNP packets generated */
    uint64_t ctrl_delivered;
    uint64_t ctrl_dropped;
    uint64_t pool_exhausted;     /* packets not created because the pool was empty */
    uint64_t packet_hops;        /* packets that crossed a link */
    uint64_t ecn_marked;
    uint64_t cnp_sent;
    uint64_t nak_sent;
    uint64_t timeouts;
    uint64_t retransmitted;
    uint64_t msgs_completed;
    uint64_t pkts_in_use;        /* packets currently allocated from the pool */
    uint64_t pkts_peak;          /* most packets in use at once */
    uint64_t heap_peak;          /* most pending events at once */
    uint64_t pfc_pauses;         /* XOFF frames sent by switches */
    uint64_t pfc_resumes;        /* XON frames sent by switches */
    uint64_t random_drops;       /* packets lost to a link's random loss (sd_set_port_loss) */
    uint64_t ar_moves;           /* adaptive routing chose another egress than the ECMP hash */
    uint64_t misdelivered;       /* packets a NIC refused (another host's, a foreign QP's, or a VXLAN
                                  * frame at a NIC without a vSwitch): dropped, counted in *_dropped */
    uint64_t retx_dropped;       /* of data_dropped: retransmissions (the rest were first transmissions) */
} sd_counters;

/* ---------------------------------------------------------------- the DPU: VFs and the vSwitch (native/vswitch.c)
 * A DPU (one per host) switches its functions' traffic in a vSwitch: an exact-match cache (EMC) in
 * front of a masked tuple-space classifier of flows (OVS dpif-netdev's EMC + dpcls). A miss parks
 * the packet in a bounded upcall queue and sd_run_until returns SD_STOP_UPCALL; the control plane
 * (controlplane/dpu/vswitch.py) translates it with its tenant policy, executes it (sd_vs_execute) and
 * installs a megaflow that becomes visible after the install latency (sd_vs_install active_ps).
 * DPU port numbers (flow keys, actions): 0 = uplink p0, 1 = host PF pf0hpf, 2 + n = VF n (pf0vfN). */
enum { SD_VS_UPLINK = 0, SD_VS_PF = 1, SD_VS_VF0 = 2, SD_VS_KEY_WORDS = 8, SD_VS_MAX_SUBTABLES = 64,
       SD_VS_COUNTERS = 16, SD_VS_MAX_VNI = 16777215, SD_VXLAN_OVERHEAD = 50, SD_VXLAN_PORT = 4789 };
/* Flow-key words (each uint32): what the vSwitch parses from a packet. */
enum sd_vs_field { SD_VS_F_IN_PORT = 0, SD_VS_F_VNI = 1, SD_VS_F_SRC_IP = 2, SD_VS_F_DST_IP = 3,
                   SD_VS_F_PROTO_DSCP = 4, SD_VS_F_L4 = 5, SD_VS_F_DQPN = 6, SD_VS_F_RESERVED = 7 };
/* Action bits (sd_vs_action.flags), applied in this order: drop; decap; set DSCP; meter; count;
 * encap; output. A flow without SD_VS_OUTPUT drops. Every flow also counts its packets/bytes. */
enum sd_vs_act { SD_VS_OUTPUT = 1, SD_VS_ENCAP = 2, SD_VS_DECAP = 4, SD_VS_SET_DSCP = 8, SD_VS_METER = 16,
                 SD_VS_COUNT = 32, SD_VS_DROP = 64 };
typedef struct sd_vs_action {
    uint32_t flags;              /* SD_VS_* bits */
    uint32_t out_port;           /* SD_VS_OUTPUT: DPU port */
    uint32_t vni;                /* SD_VS_ENCAP: VXLAN network identifier (1 .. 2^24-1) */
    uint32_t tun_dst;            /* SD_VS_ENCAP: remote DPU (host node), UINT32_MAX = the packet's own */
    uint32_t dscp;               /* SD_VS_SET_DSCP */
    uint32_t meter;              /* SD_VS_METER: meter index of this DPU */
    uint32_t counter;            /* SD_VS_COUNT: user counter index (0 .. SD_VS_COUNTERS-1) */
    uint32_t pad0;
} sd_vs_action;
/* An installed flow (megaflow or rule): a masked key, a priority, actions and statistics. */
typedef struct sd_vs_flow {
    uint32_t key[8];             /* value, already masked */
    uint32_t mask[8];
    int64_t active_ps;           /* lookups see the flow from this time on (install latency) */
    int64_t used_ps;             /* last packet, -1 none (idle eviction) */
    uint64_t packets;
    uint64_t bytes;
    sd_vs_action act;
    int32_t priority;            /* highest wins; megaflows from the slow path use 0 */
    uint32_t subtable;           /* UINT32_MAX = free slot */
    uint32_t next;               /* hash-chain link */
    uint32_t gen;                /* bumped when the slot is freed (EMC validity) */
} sd_vs_flow;
/* A function of a DPU (VF), as the control plane created it. */
typedef struct sd_vs_vf {
    uint32_t host;               /* its DPU */
    uint32_t index;              /* n of pf0vfN */
    uint32_t vni;                /* its tenant's VNI */
    uint32_t ip;                 /* its (tenant-scoped) IPv4 address, host order */
    uint64_t tx_packets;         /* packets it sent into the vSwitch */
    uint64_t rx_packets;         /* packets the vSwitch delivered to it */
    uint64_t rx_bytes;
    uint64_t isolation_drops;    /* packets stopped because they would cross tenants */
} sd_vs_vf;
/* A miss waiting for the slow path. */
typedef struct sd_vs_upcall {
    int64_t t_ps;                /* when the packet missed */
    uint32_t key[8];
    uint32_t dpu;                /* host node */
    uint32_t slot;               /* handle for sd_vs_execute */
    uint32_t wire;               /* bytes on the wire */
    uint32_t pad0;
} sd_vs_upcall;
/* Per-DPU counters, the shape of OVS's pmd stats (lib/dpif-netdev-perf.h): every packet entering
 * the vSwitch ends in exactly one of exact_hit, masked_hit, miss (upcalled) or lost. */
typedef struct sd_vs_stats {
    uint64_t rx;                 /* packets entering the vSwitch (from functions and the uplink) */
    uint64_t rx_bytes;
    uint64_t exact_hit;          /* EMC hits */
    uint64_t masked_hit;         /* classifier hits */
    uint64_t masked_lookups;     /* subtables probed by classifier lookups (OVS MASKED_LOOKUP) */
    uint64_t miss;               /* upcalled */
    uint64_t lost;               /* missed with the upcall queue full: dropped */
    uint64_t emc_inserts;
    uint64_t executed;           /* upcalled packets the slow path executed (sd_vs_execute) */
    uint64_t installs;
    uint64_t deletes;
    uint64_t encaps;
    uint64_t decaps;
    uint64_t dscp_sets;
    uint64_t meter_drops;
    uint64_t action_drops;       /* drop action or no output */
    uint64_t isolation_drops;    /* would cross tenants: stopped by the fast path whatever the rules */
    uint64_t no_qp_drops;        /* delivered to a function without that QP (misrouted) */
    uint64_t to_functions;       /* packets delivered to the PF or a VF */
    uint64_t to_uplink;          /* packets sent to the uplink */
    uint64_t copy_bytes;         /* bytes crossing between function memory and the DPU */
    uint64_t flows;              /* installed now */
    uint64_t subtables;          /* masks in use now */
    uint64_t upcall_depth;       /* upcalls queued or in the slow path now */
    uint64_t upcall_peak;
    uint64_t counters[16];       /* SD_VS_COUNT targets */
} sd_vs_stats;

/* ---------------------------------------------------------------- opaque simulator */
typedef struct sd_sim sd_sim;

/* Create a simulator; returns NULL and sets sd_last_error() on bad config. */
sd_sim *sd_create(const sd_config *cfg);
void sd_destroy(sd_sim *sim);
const char *sd_last_error(sd_sim *sim);   /* sim may be NULL (errors of sd_create) */

/* Fabric. Links are added in order; link i owns ports 2i (at a) and 2i+1 (at b). */
/* ---------------------------------------------------------------- nodes */
enum sd_node_kind { SD_NODE_HOST = 0, SD_NODE_SWITCH = 1 };
/* The node table: kinds[i] is node i's kind, n = num_hosts + num_switches. Nodes 0 .. num_hosts-1
 * must be hosts and the others switches (the numbering rule; sd_create sets this table, so the
 * call is the control plane's declaration, checked). A host may have several ports (NICs). */
int sd_set_nodes(sd_sim *sim, const uint8_t *kinds, uint32_t n);
/* Node `node`'s kind (enum sd_node_kind), -1 if it does not exist. */
int sd_node_kind(sd_sim *sim, uint32_t node);
/* Node `node`'s ports in link order, written to ports_out (at most max); returns their number. */
int sd_node_ports(sd_sim *sim, uint32_t node, uint32_t *ports_out, uint32_t max);
/* Addresses: what a packet's destination names and what a fib column is. An address is a group of
 * ports of one host (a host interface: a NIC with its plane ports, an NVLink port). By default
 * address h is host h with all its ports (num_addrs = num_hosts). sd_set_addresses declares them
 * after the links and before the fib and the QPs: port_addr[p] (one per port, num_ports = 2 x
 * links) is the address of host port p in 0 .. num_addrs-1 (every host port has one, all ports of
 * an address belong to one host, every address has a port), SD_NONE at switch ports. Then the fib
 * has num_addrs columns and may hold SD_NONE (the address is not reachable from that switch: a
 * packet meeting it is dropped and counted, sd_no_route_drops). A QP takes the address of the port
 * it is bound to (sd_bind_qp), and what it sends is addressed to its peer QP's address; delivery at
 * a host does not look at the address (the destination QP decides). SD_ESTATE after the fib or a
 * QP exists, or for links added after it. */
int sd_set_addresses(sd_sim *sim, const uint32_t *port_addr, uint32_t num_ports, uint32_t num_addrs);
/* The address of host port `port`, -1 for a switch port or a port that does not exist. */
int sd_address_of_port(sd_sim *sim, uint32_t port);
/* A QP's own address and its peer's (where its packets go). */
int sd_qp_address(sd_sim *sim, uint32_t qp, uint32_t *addr, uint32_t *peer_addr);
/* Packets dropped at a switch whose fib has no route (SD_NONE) to their destination address. */
uint64_t sd_no_route_drops(sd_sim *sim);
int sd_add_links(sd_sim *sim, const uint32_t *a, const uint32_t *b, const uint64_t *rate_bps,
                 const int64_t *delay_ps, uint32_t n);
int sd_set_queue(sd_sim *sim, uint32_t port, uint32_t prio, uint64_t cap_bytes,
                 uint64_t kmin_bytes, uint64_t kmax_bytes, double pmax);
/* The discipline of queue (port, prio): kind by name (drop_tail, red_ecn, codel_ecn, traffic_class), its
 * parameters in the order sd_qdisc_param_name gives. Keeps the queue's byte capacity.
 * sd_set_queue is the shorthand for drop_tail (pmax = 0) and red_ecn (pmax > 0). */
int sd_set_qdisc(sd_sim *sim, uint32_t port, uint32_t prio, const char *kind, const double *params, uint32_t n);
/* Parameter i of discipline `kind` (by name) as its provider declares it (native/qdisc*.c: a
 * qdisc_param): its name (NULL past the last or for an unknown kind), its kind, the closed range
 * [lo, hi] sd_set_qdisc accepts (sd_qdisc_param_range: 1 if 0 is accepted as well, outside the
 * range (off), 0 if not, -1 past the last or for an unknown kind) and that rule in words, as its
 * errors give it ("qdisc <kind>: <name> must be [an integer] <rule>, got <value>"). Every value
 * is checked against this before the discipline's own rules between parameters (kmax >= kmin). */
const char *sd_qdisc_param_name(const char *kind, uint32_t i);
enum { SD_QDISC_PARAM_INT = 0,    /* an integer (bytes, ps): an integer-valued double */
       SD_QDISC_PARAM_REAL = 1 }; /* a real number (a fraction) */
uint32_t sd_qdisc_param_kind(const char *kind, uint32_t i);  /* SD_QDISC_PARAM_*; 0 past the last */
int sd_qdisc_param_range(const char *kind, uint32_t i, double *lo, double *hi);
const char *sd_qdisc_param_rule(const char *kind, uint32_t i);
/* The registry: disciplines 0 .. sd_qdisc_count() - 1 by name (NULL past the last). */
uint32_t sd_qdisc_count(void);
const char *sd_qdisc_name(uint32_t kind);
/* DSCP -> traffic class (0..7) of the traffic_class discipline: 64 entries. Default DSCP >> 3. */
int sd_set_dscp_map(sd_sim *sim, const uint32_t *classes, uint32_t n);
/* The DSCP of a QP pair's data packets (both ends), instead of cfg.dscp_data: a traffic class per
 * connection (as the GRH traffic class an RDMA application sets on its QP). */
int sd_set_qp_dscp(sd_sim *sim, uint32_t qp, uint32_t dscp);
/* Bytes queued per class (8) at a traffic_class port. */
int sd_tc_class_bytes(sd_sim *sim, uint32_t port, uint64_t *out);
/* The discipline of queue (port, prio) (its index: sd_qdisc_name), -1 for a bad port or prio. */
int sd_qdisc_of(sd_sim *sim, uint32_t port, uint32_t prio);
/* fib[(switch - num_hosts) * num_addrs + dst address] = ECMP set; set s = ports[offsets[s] .. offsets[s+1]).
 * With default addresses (num_addrs = num_hosts) every entry must be a set; with declared ones
 * an entry may be SD_NONE (no route). Installed as one group per address (sd_install_routes). */
int sd_install_fib(sd_sim *sim, const uint32_t *fib, const uint32_t *set_offsets, uint32_t num_sets,
                   const uint32_t *set_ports, uint32_t num_set_ports);
/* The same routes, grouped (what controlplane/fabric/routing.py computes): addresses attached to
 * the same switches share a group (a ToR's hosts), and a switch routes a group alike except at
 * the switches the addresses hang off, where each address has its own set.
 * group_fib[(switch - num_hosts) * num_groups + g] = ECMP set, SD_NONE (no route: declared
 * addresses only) or SD_FIB_LOCAL: then address a's set at that switch is local_set[i] for the i
 * in [local_offsets[a], local_offsets[a+1]) with local_switch[i] = switch - num_hosts. Every
 * SD_FIB_LOCAL entry of a's group must have exactly one such entry, and no other entries exist. */
#define SD_FIB_LOCAL 0xFFFFFFFE
int sd_install_routes(sd_sim *sim, const uint32_t *group_fib, uint32_t num_groups, const uint32_t *addr_group,
                      const uint32_t *local_offsets, const uint32_t *local_switch, const uint32_t *local_set,
                      uint32_t num_local, const uint32_t *set_offsets, uint32_t num_sets,
                      const uint32_t *set_ports, uint32_t num_set_ports);
/* The ECMP set installed at switch node `node` for address `addr` (SD_NONE = no route); -1 after
 * an error (no fib, bad node or address). For tests: the grouped table read as the flat one. */
int64_t sd_fib_lookup(sd_sim *sim, uint32_t node, uint32_t addr);
int sd_set_link_up(sd_sim *sim, uint32_t link, uint32_t up);
/* PFC (IEEE 802.1Qbb) on the data priority of a switch, with the HPCC simulator's shared-buffer
 * rules: per-ingress reserve, headroom, a dynamic threshold (free shared buffer >> alpha_shift)
 * and a resume offset. XOFF frames carry pause_quanta (1..65535, x 512 bit times of the link): the
 * paused port resumes when they run out, and the switch refreshes XOFF at half that while still
 * congested; XON ends a pause at once. */
int sd_set_pfc(sd_sim *sim, uint32_t switch_node, uint64_t buffer_bytes, uint64_t reserve_bytes,
               uint64_t resume_offset_bytes, uint32_t alpha_shift, uint32_t pause_quanta);
int sd_set_pfc_headroom(sd_sim *sim, uint32_t port, uint64_t headroom_bytes);

/* Deliver the ACK events of a QP (either end) in batches of n ACKs (n >= 1; 1 = every ACK). */
int sd_set_ack_batch(sd_sim *sim, uint32_t qp, uint32_t n);
/* Congestion-control parameter blocks of the C twins: values in the order of the names that
 * sd_cc_param_name(kind, i) gives (NULL past the last). Returns the block index or an error. */
int sd_add_cc_params(sd_sim *sim, uint32_t kind, const double *values, uint32_t n);
const char *sd_cc_param_name(uint32_t kind, uint32_t i);
/* Python plug-ins: the opaque handle given back to sd_cc_python_event(). */
void sd_set_userdata(sd_sim *sim, void *userdata);

/* QPs: a connected pair, one QP at each host (or both at one host with several declared addresses,
 * then bound to ports of two of them before posting: sd_post_writes refuses a QP whose ends share an
 * address, as loopback is not modelled). Returns the QP index at src (the pair is
 * (ret, ret+1), the second at dst) or an error. */
int sd_create_qp_pair(sd_sim *sim, uint32_t src_host, uint32_t dst_host, uint32_t sport,
                      uint32_t cc_kind, uint32_t cc_param, uint32_t cc_evmask, uint32_t isn);
/* Bind one QP to a port (NIC) of its host: its packets (data, and the ACKs/CNPs it sends) leave
 * by that port, and it takes that port's address (its peer QP then sends to it there). A new QP is bound to its host's first port. A QP with posted messages moves only
 * between ports of one rate (NIC failover: its scheduling state moves with it). */
int sd_bind_qp(sd_sim *sim, uint32_t qp, uint32_t port);
/* Transport of a QP pair (both ends; before the first post): mode (enum sd_transport),
 * reorder_window packets (a power of 2 in [64, SD_MAX_REORDER_WINDOW]; ignored for gbn), IRN's
 * two-level RTO (rto_low_ps while at most rto_low_pkts packets are out; 0 = off), IRN's BDP-FC
 * (at most bdp_cap packets out; 0 = off). */
int sd_set_transport(sd_sim *sim, uint32_t qp, uint32_t mode, uint32_t reorder_window, int64_t rto_low_ps,
                     uint32_t rto_low_pkts, uint32_t bdp_cap);
/* NIC settings of one end of a QP pair (its NIC profile, negotiated by the control plane), before
 * the pair's first post: mtu_payload (payload bytes per data packet it sends: message packet
 * counts, payload, window bytes and pacing; [64, 9000]), ack_interval (as receiver: ACK every n-th
 * data packet, >= 1), cnp_mode (as receiver, the notification point: enum sd_cnp_mode, SD_CNP_NONE
 * = no CE feedback) and cnp_interval_ps (its minimum gap between CNPs, >= 0), rto_ps (as sender:
 * the retransmission timeout, > 0). 0 (cnp_mode: SD_QP_NIC_DEFAULT; cnp_interval_ps: -1) = the
 * simulator's value (sd_config). The ends of a pair should have one MTU (the control plane
 * negotiates the smaller). */
#define SD_QP_NIC_DEFAULT 0xFFFFFFFFu
/* Whether one end of a QP pair, as a go-back-N receiver, NAKs a gap (1, the default) or stays silent
 * (0: a NIC without NAK support; its sender recovers a loss only by its retransmission timeout). */
int sd_set_qp_nak(sd_sim *sim, uint32_t qp, uint32_t enabled);
int sd_set_qp_nic(sd_sim *sim, uint32_t qp, uint32_t mtu_payload, uint32_t ack_interval, uint32_t cnp_mode,
                  int64_t cnp_interval_ps, int64_t rto_ps);
/* Path set of a QP's data packets: n entropies (UDP source ports), a policy (its registry index),
 * weights (policies with SD_PATHF_WEIGHTS: >= 1 each; NULL otherwise), ar_classes = the QP's
 * SD_AR_CLASS_* mask (the packet classes it marks eligible for adaptive routing; replaces what
 * sd_set_ar_classes gave). Policies with SD_PATHF_PARAMS need the QP's parameters first
 * (every name given through sd_set_path_param, or sd_set_path_params): SD_EINVAL otherwise, the data plane
 * has no defaults of its own. A new set keeps the QP's parameters. */
int sd_set_paths(sd_sim *sim, uint32_t qp, uint32_t policy, const uint32_t *entropies, const uint32_t *weights,
                 uint32_t n, uint32_t ar_classes);
/* One parameter of the path policies of a QP (the path_params block), by the name a policy
 * declares (sd_path_param_name): an integer one (SD_PATH_PARAM_INT) takes ivalue, a real one
 * (SD_PATH_PARAM_REAL) dvalue; the declaring policy's bounds apply. Before sd_set_paths of a
 * policy that needs them (every name given once: sd_path_params_ready); a later call changes the
 * value in place. */
int sd_set_path_param(sd_sim *sim, uint32_t qp, const char *name, int64_t ivalue, double dvalue);
/* 1 once every parameter name of the registry has been given for the QP, else 0. */
int sd_path_params_ready(sd_sim *sim, uint32_t qp);
/* The four parameters of the built-in policies (flowlet, plb, clove) at once: checked together,
 * then set through sd_set_path_param. */
int sd_set_path_params(sd_sim *sim, uint32_t qp, int64_t flowlet_gap_ps, double plb_cong_thresh,
                       uint32_t plb_rehash_rounds, int64_t plb_suspend_ps);
/* The registry: policies 0 .. sd_path_policy_count() - 1 by name, the path_params each reads (NULL
 * past the last), and what each needs (SD_PATHF_*). */
enum { SD_PATHF_ONE = 1,          /* exactly one entropy (ecmp) */
       SD_PATHF_WEIGHTS = 2,      /* takes integer weights (spray_weighted) */
       SD_PATHF_PARAMS = 4 };     /* needs its parameters first (sd_path_params_ready) */
enum { SD_PATH_MAX_PARAMS = 8 };
uint32_t sd_path_policy_count(void);
const char *sd_path_policy_name(uint32_t policy);
const char *sd_path_param_name(uint32_t policy, uint32_t i);
enum { SD_PATH_PARAM_INT = 0,     /* an integer (picoseconds, a count): exact to 2^63 */
       SD_PATH_PARAM_REAL = 1 };  /* a real number (a fraction) */
uint32_t sd_path_param_kind(uint32_t policy, uint32_t i);   /* SD_PATH_PARAM_*; 0 past the last */
uint32_t sd_path_policy_flags(uint32_t policy);
/* A QP's path set, decoded (sd_get_paths): a QP without one reports ecmp on its own sport. */
typedef struct sd_path_set {
    uint32_t policy;             /* registry index */
    uint32_t n;                  /* entropies */
    uint32_t ar_classes;         /* SD_AR_CLASS_* mask */
    uint32_t nparams;            /* values in param[], in the order sd_path_param_name gives */
    uint32_t entropy[16];
    double weight[16];           /* per path as the policy uses it now (not cumulative); 1 each if unweighted */
    double param[8];             /* the parameters as doubles ... */
    int64_t param_int[8];        /* ... and the integer ones exactly (0 for a fractional one) */
} sd_path_set;
int sd_get_paths(sd_sim *sim, uint32_t qp, sd_path_set *out);
/* Path telemetry of every QP (rows of QPs without a path set are zero); count = rows. */
sd_path_stats *sd_path_states(sd_sim *sim, uint32_t *count);
/* Adaptive routing at a switch: eligible packets take the least-loaded candidate egress (mode
 * SD_AR_BYTES: queued data bytes; SD_AR_DELAY: queued bytes / link rate; ties go to the ECMP
 * choice); SD_AR_OFF = ECMP only. */
enum sd_ar_mode { SD_AR_OFF = 0, SD_AR_BYTES = 1, SD_AR_DELAY = 2 };
/* Which packets a QP marks AR-eligible (the NIC's per-class marking): a mask of these. */
enum { SD_AR_CLASS_DATA = 1, SD_AR_CLASS_ACK = 2, SD_AR_CLASS_CNP = 4 };
int sd_set_ar_classes(sd_sim *sim, uint32_t qp, uint32_t mask);
int sd_set_adaptive_routing(sd_sim *sim, uint32_t switch_node, uint32_t mode);
/* The links of the ECMP path from host src (its first port) to address dst (= host dst by default)
 * with entropy sport: returns how many were written to links_out. */
int sd_trace_path(sd_sim *sim, uint32_t src, uint32_t dst, uint32_t sport, uint32_t *links_out, uint32_t max);
/* The same from a given host port (the source address is the port's): the path of a QP bound to it. */
int sd_trace_path_from(sd_sim *sim, uint32_t src_port, uint32_t dst, uint32_t sport, uint32_t *links_out,
                       uint32_t max);
/* Random loss on the link direction leaving `port` (probability per packet, 0 = none). */
int sd_set_port_loss(sd_sim *sim, uint32_t port, double probability);
/* Post RDMA WRITEs: n messages (qp, bytes, post time). Returns the first message index.
 * QP and message tables grow when full: views from sd_qps()/sd_msgs() must then be re-fetched. */
int sd_post_writes(sd_sim *sim, const uint32_t *qp, const uint64_t *bytes, const int64_t *post_ps,
                   uint32_t n);
/* Post messages of any verb (enum sd_verb per message; verb NULL = all WRITEs). A READ is at most
 * 2^31 bytes (IBTA: the RETH DMA length), and on an sr/ooo QP at most reorder_window packets. */
int sd_post_msgs(sd_sim *sim, const uint32_t *qp, const uint64_t *bytes, const int64_t *post_ps,
                 const uint8_t *verb, uint32_t n);
/* The verbs settings of one QP end (IBTA Vol. 1 §9.7.5.2.8, §10.8): as a responder, rq_depth receives
 * posted at the start (UINT32_MAX = unlimited: never RNR, the default) and each consumed receive
 * reposted rq_repost_ps after its message completes (< 0: never; sd_post_recv adds more);
 * min_rnr_timer is the 5-bit code it puts in its RNR NAKs (0..31; 1 = 10 us .. 31 = 491.52 ms,
 * 0 = 655.36 ms); as a requester, rnr_retry RNR NAKs are retried (7 = forever) before its
 * messages complete in error, and at most max_rd_atomic READs are outstanding (1..16). */
int sd_set_qp_verbs(sd_sim *sim, uint32_t qp, uint32_t rq_depth, int64_t rq_repost_ps, uint32_t min_rnr_timer,
                    uint32_t rnr_retry, uint32_t max_rd_atomic);
/* The application posts n more receives at a QP end now. */
int sd_post_recv(sd_sim *sim, uint32_t qp, uint32_t n);
/* ATOMIC operands of posted messages (before they are sent): value = the swap data of a compare-and-
 * swap or the add data of a fetch-and-add, compare = the compare data. Default: add 1, compare 0. */
int sd_set_atomic_args(sd_sim *sim, uint32_t msg, uint64_t value, uint64_t compare);
/* The 64-bit word the ATOMICs to a QP end operate on (its memory region's first word): read, set. */
int sd_atomic_word(sd_sim *sim, uint32_t qp, uint64_t *value);
int sd_set_atomic_word(sd_sim *sim, uint32_t qp, uint64_t value);
/* The RNR timer of a 5-bit code, in picoseconds (IBTA Vol. 1 Table 45). */
int64_t sd_rnr_timer_ps(uint32_t code);
enum { SD_MAX_RD_ATOMIC = 16 };

/* Run until time t_ps or an earlier stop (enum sd_stop); < 0 on error. An event that cannot be
 * scheduled (its queue cannot grow, or sd_set_event_limit's cap is reached) stops the run at the
 * end of the event being handled with SD_ENOMEM, and every later call returns the same error:
 * no event is ever dropped silently. */
int sd_run_until(sd_sim *sim, int64_t t_ps);
/* Advance an idle data plane's clock to t_ps (>= now) with nothing to run: for a controller whose
 * next action (a compute delay, a failure) lies beyond the last event. SD_ESTATE if an event or an
 * upcall is pending (run to it instead), SD_EINVAL if t_ps < now (as sd_run_until). */
int sd_advance_idle(sd_sim *sim, int64_t t_ps);
/* Cap the number of pending events (0 = no cap, the default): scheduling one more fails the run
 * as an allocation failure would. For tests of that path and as a memory guard. */
int sd_set_event_limit(sd_sim *sim, uint64_t max_pending);
/* The run budget. sd_run_until returns SD_STOP_MAX_EVENTS instead of handling one more event once
 * sd_counters.events = max_events (0 = no budget), and SD_STOP_EVENTS once chunk_events events ran
 * in the current call (0 = no chunks), so that a control plane can check a wall-clock budget even
 * when it asks for a far time. Both cost one compare per event; neither changes what a run does. */
int sd_set_run_budget(sd_sim *sim, uint64_t max_events, uint64_t chunk_events);
/* The wall-clock budget: sd_run_until returns SD_STOP_WALL before handling an event once `seconds`
 * of wall clock (a monotonic clock) have passed since this call; 0 = none (the default). The clock
 * is read every SD_WALL_CHECK_EVENTS events and after every event that called a Python plug-in, so
 * a run stops within a few ms of its deadline unless one plug-in call alone takes longer. Each call
 * starts a new deadline (a run of its own). */
int sd_set_wall_budget(sd_sim *sim, double seconds);
enum { SD_WALL_CHECK_EVENTS = 256 };
/* No progress at one instant: more than `max_same_instant` events at one picosecond stops the run
 * with SD_ESTALL (sticky, like SD_ENOMEM), naming the last event. Required (>= 1) before
 * sd_run_until: the data plane keeps no default of its own (dataplane/sim.py sets one scaled with
 * the fabric unless a caller gives its own). */
int sd_set_stall_limit(sd_sim *sim, uint64_t max_same_instant);
/* The name of the Python congestion-control plug-in, for error messages (default "python plug-in"). */
int sd_set_python_cc_name(sd_sim *sim, const char *name);
int64_t sd_now(sd_sim *sim);
/* Drain up to max completions into out; returns how many. */
uint32_t sd_drain_completions(sd_sim *sim, sd_completion *out, uint32_t max);

/* Zero-copy views (Python wraps them as numpy arrays). */
sd_port_stats *sd_ports(sd_sim *sim, uint32_t *count);      /* the telemetry records */
sd_qp_stats *sd_qps(sd_sim *sim, uint32_t *count);
sd_msg *sd_msgs(sd_sim *sim, uint32_t *count);
sd_cc_trace *sd_trace(sd_sim *sim, uint32_t *count);
const sd_counters *sd_get_counters(sd_sim *sim);
/* Packets the NIC of host refused as not addressed to it or to its QPs (sd_counters.misdelivered, per host). */
int sd_host_misdelivered(sd_sim *sim, uint32_t host, uint64_t *out);
/* Packets currently queued or on a wire (conservation check). */
uint64_t sd_data_in_flight(sd_sim *sim);
/* Memory the simulator allocated, and bytes per packet / per QP, for the benchmark. */
uint64_t sd_memory_bytes(sd_sim *sim);
/* The same by module (the data plane's module table, in its order): up to max names and byte
 * counts; returns the number of modules. sd_memory_bytes is their sum. */
uint32_t sd_mem_report(sd_sim *sim, const char **names, uint64_t *bytes, uint32_t max);
uint32_t sd_sizeof_packet(void);
/* Bytes per port, per QP and per QP with a path set: the working state plus its telemetry record. */
uint32_t sd_sizeof_port(void);
uint32_t sd_sizeof_qp(void);
uint32_t sd_sizeof_path_state(void);

/* vSwitch setup (sd_vs_enable once per DPU, then VFs, meters, flows). */
int sd_vs_enable(sd_sim *sim, uint32_t host, uint32_t max_flows, uint32_t emc_entries, uint32_t emc_insert_inv_prob,
                 uint32_t upcall_queue, uint32_t max_meters, int64_t rerank_interval_ps);
/* Add a VF to a DPU: returns its global VF id (sd_vs_vf index); its DPU port is SD_VS_VF0 + index. */
int sd_vs_add_vf(sd_sim *sim, uint32_t host, uint32_t vni, uint32_t ip);
/* Put a QP on a VF (global id; UINT32_MAX = the PF). Both QPs of a pair may sit on different DPUs' VFs. */
int sd_vs_set_qp_function(sd_sim *sim, uint32_t qp, uint32_t vf);
/* Token-bucket policer: rate_bps, burst bytes. */
int sd_vs_set_meter(sd_sim *sim, uint32_t host, uint32_t meter, uint64_t rate_bps, uint64_t burst_bytes);
/* Install a flow; returns its id. Identical (mask, value, priority) twice is an error. */
int sd_vs_install(sd_sim *sim, uint32_t host, const uint32_t *value, const uint32_t *mask, int32_t priority,
                  const sd_vs_action *act, int64_t active_ps);
int sd_vs_delete(sd_sim *sim, uint32_t host, uint32_t flow);
int sd_vs_modify(sd_sim *sim, uint32_t host, uint32_t flow, const sd_vs_action *act);
/* Take the pending upcalls (oldest first); each stays queued (counted in upcall_depth) until executed. */
uint32_t sd_vs_drain_upcalls(sd_sim *sim, sd_vs_upcall *out, uint32_t max);
/* sd_run_until returns SD_STOP_UPCALL once the next event lies more than lookahead_ps past the
 * oldest pending upcall (default 0: at once). A slow path whose handling of an upcall at t cannot
 * act before t + lookahead (its service time) may batch them this way with identical results. */
int sd_vs_set_lookahead(sd_sim *sim, int64_t lookahead_ps);
/* Execute an upcalled packet's actions at at_ps (>= now) and free its queue slot then. */
int sd_vs_execute(sd_sim *sim, uint32_t host, uint32_t slot, const sd_vs_action *act, int64_t at_ps);
/* Classify a key as the classifier would at time now (no statistics, no EMC): the flow id in
 * flow_out (UINT32_MAX = miss) and the subtables probed. For tests and the control plane. */
int sd_vs_lookup(sd_sim *sim, uint32_t host, const uint32_t *key, uint32_t *flow_out, uint32_t *probes);
sd_vs_flow *sd_vs_flows(sd_sim *sim, uint32_t host, uint32_t *count);
sd_vs_vf *sd_vs_vfs(sd_sim *sim, uint32_t *count);
sd_vs_stats *sd_vs_get_stats(sd_sim *sim, uint32_t *count);
/* The key a packet of QP qp (data or control, sender side) would present to its DPU's vSwitch. */
int sd_vs_packet_key(sd_sim *sim, uint32_t qp, uint32_t *key_out);
/* Serialize a packet with vSwitch metadata (VXLAN encapsulated when SD_VS_META_ENCAP is set). */
int sd_encode_meta(sd_sim *sim, const sd_packet *pk, uint32_t meta, uint8_t *buf, uint32_t cap, uint32_t snaplen);
/* vSwitch metadata of a packet: bits 0..23 its tenant VNI (0 = none), bit 24 VXLAN-encapsulated,
 * bit 25 DSCP rewritten, bits 26..31 that DSCP. */
enum { SD_VS_META_VNI = 16777215, SD_VS_META_ENCAP = 16777216, SD_VS_META_DSCP_SET = 33554432, SD_VS_META_DSCP_SHIFT = 26 };

/* Wire encoding and packet capture (native/wire.c). Frames are what a capture shows: Ethernet
 * header to ICRC, without preamble and FCS. Address h (host h unless addresses are declared:
 * sd_set_addresses) has MAC 02:00:00:hh:hh:hh (h+1), IPv4 10.x.y.z = 10.0.0.0 + h + 1, IPv6
 * fd00::h+1; QP index q is QPN q + SD_QPN_BASE on the wire
 * (QPNs 0 and 1 are InfiniBand's management QPs). */
enum { SD_MAX_CAPTURES = 8, SD_QPN_BASE = 0x100 };
/* Serialize a packet: writes min(frame, snaplen, cap) bytes to buf, returns the frame length. */
int sd_encode(sd_sim *sim, const sd_packet *pk, uint8_t *buf, uint32_t cap, uint32_t snaplen);
/* Open a pcap capture (nanosecond timestamps, Ethernet). Packets of QP pair containing `qp` only
 * (UINT32_MAX = all), sent in [t_start_ps, t_end_ps), at most max_packets (0 = no limit).
 * Returns the session id (0..7). */
int sd_capture_open(sd_sim *sim, const char *path, uint32_t snaplen, int64_t t_start_ps, int64_t t_end_ps,
                    uint64_t max_packets, uint32_t qp);
/* Record what `port` transmits (tx) and/or what its node receives through it (rx). */
int sd_capture_port(sd_sim *sim, uint32_t session, uint32_t port, uint32_t tx, uint32_t rx);
int sd_capture_close(sd_sim *sim, uint32_t session);
int sd_capture_stats(sd_sim *sim, uint32_t session, uint64_t *packets, uint64_t *bytes);
/* Write arbitrary packets (with their timestamps) to a new pcap file. */
int sd_write_pcap(sd_sim *sim, const char *path, const sd_packet *pkts, const int64_t *t_ps, uint32_t n,
                  uint32_t snaplen);
/* The ICRC of a frame (Ethernet header to ICRC, IPv4 or IPv6) as it would be put on the wire. */
uint32_t sd_icrc(const uint8_t *frame, uint32_t len);

/* ---------------------------------------------------------------- pcap reading (native/pcap_scan.c)
 * dataplane/pcap.py read_pcap: sd_pcap_scan walks the records of a classic pcap file held in
 * memory (the 24-byte file header already checked by Python) and parses each RoCEv2 frame into
 * one record (enum sd_pcap_rec_layout), with libpcap's record rules and the checks, skip reasons and field values of
 * the reference reader in Python (tests/test_pcap_scan.py compares them record for record).
 * Every read is bounds-checked against len and each record's captured length: a damaged file
 * gives counted skips or a stop, never a read outside the buffer. */
enum sd_pcap_skip {
    SD_PCAP_TRUNCATED_RECORD = 0, SD_PCAP_BAD_RECORD_LENGTH = 1, SD_PCAP_INCL_EXCEEDS_ORIG = 2,
    SD_PCAP_BAD_TIMESTAMP = 3, SD_PCAP_TIMESTAMP_OUT_OF_RANGE = 4, SD_PCAP_TRUNCATED_FRAME = 5,
    SD_PCAP_BAD_IP_HEADER = 6, SD_PCAP_NOT_UDP = 7, SD_PCAP_NOT_IP = 8, SD_PCAP_NOT_ROCEV2 = 9,
    SD_PCAP_BAD_UDP_LENGTH = 10, SD_PCAP_SNAPLEN_BEFORE_BTH = 11, SD_PCAP_SKIP_KINDS = 12
};
/* Why a scan returned: the end of the data, a stop (the record boundaries are lost: its reason is
 * also counted in skipped[]), or the output is full (call again to go on). */
enum sd_pcap_stop {
    SD_PCAP_RUNNING = 0, SD_PCAP_END = 1, SD_PCAP_STOP_SHORT_HEADER = 2, SD_PCAP_STOP_SNAPLEN = 3,
    SD_PCAP_STOP_TRUNCATED = 4, SD_PCAP_OUT_FULL = 5
};
typedef struct sd_pcap_scan_state {
    /* set by the caller before the first call */
    uint32_t big_endian;         /* record headers in big-endian byte order */
    uint32_t nanosecond;         /* the sub-second field is in ns (else us) */
    uint32_t limit;              /* the largest captured length allowed (libpcap: the snaplen) */
    uint32_t index;              /* record index of the record at offset (0 at the start) */
    uint64_t offset;             /* byte offset of the next record header (24 at the start) */
    /* kept between calls */
    int64_t t_first;             /* time of the first record with a valid timestamp */
    uint32_t has_first;
    uint32_t stop;               /* enum sd_pcap_stop */
    uint64_t stop_offset;        /* where the stop happened: the record's header offset ... */
    uint32_t stop_index;         /* ... its index */
    uint32_t stop_incl;          /* ... and its captured length (0 for a short header) */
    uint64_t skipped[12];        /* counts per enum sd_pcap_skip */
    uint32_t first_skip[12];     /* order in which each reason first occurred (1-based, 0 = never) */
    uint32_t skip_kinds_seen;
} sd_pcap_scan_state;
/* One RoCEv2 record is SD_PCAP_REC_BYTES bytes laid out as dataplane/pcap.py RECORD_DTYPE (packed,
 * native byte order; pcap.py checks these offsets against the dtype): the field at SD_PCAP_AT_<NAME>. */
enum sd_pcap_rec_layout {
    SD_PCAP_AT_T_NS = 0, SD_PCAP_AT_FRAME_LEN = 8, SD_PCAP_AT_CAPLEN = 12, SD_PCAP_AT_IP_VERSION = 16,
    SD_PCAP_AT_SRC = 17, SD_PCAP_AT_DST = 33, SD_PCAP_AT_DSCP = 49, SD_PCAP_AT_ECN = 50, SD_PCAP_AT_TTL = 51,
    SD_PCAP_AT_SPORT = 52, SD_PCAP_AT_DPORT = 54, SD_PCAP_AT_OPCODE = 56, SD_PCAP_AT_SE = 57,
    SD_PCAP_AT_MIGREQ = 58, SD_PCAP_AT_PADCNT = 59, SD_PCAP_AT_TVER = 60, SD_PCAP_AT_PKEY = 61,
    SD_PCAP_AT_FECN = 63, SD_PCAP_AT_BECN = 64, SD_PCAP_AT_DQP = 65, SD_PCAP_AT_ACKREQ = 69,
    SD_PCAP_AT_PSN = 70, SD_PCAP_AT_RETH_VA = 74, SD_PCAP_AT_RETH_RKEY = 82, SD_PCAP_AT_RETH_LEN = 86,
    SD_PCAP_AT_SYNDROME = 90, SD_PCAP_AT_MSN = 91, SD_PCAP_AT_IMM = 95, SD_PCAP_AT_PAYLOAD_LEN = 99,
    SD_PCAP_AT_ICRC = 103, SD_PCAP_AT_ICRC_OK = 107, SD_PCAP_AT_RECORD = 108, SD_PCAP_REC_BYTES = 112
};
/* Scan data[0..len) from st->offset; writes at most cap records (cap * SD_PCAP_REC_BYTES bytes)
 * to out and returns how many. */
uint64_t sd_pcap_scan(const uint8_t *data, uint64_t len, sd_pcap_scan_state *st, uint8_t *out, uint64_t cap);

/* ---------------------------------------------------------------- QP-context cache (native/qpc.c)
 * A host NIC keeps QP contexts in a bounded on-chip cache. An access is the transmit scheduler
 * picking a QP to send a data packet, or the arrival of any packet (data, ACK/NAK, CNP) for a QP.
 * A miss requests a fetch over PCIe: it starts at once if fewer than max_outstanding fetches are
 * in flight, else it waits in a FIFO; the context is inserted when the fetch completes (after
 * fetch_latency_ps), evicting one entry by the policy if the cache is full. Packets that arrive
 * for a QP whose context is being fetched wait on that QP and are processed, in arrival order,
 * when it is inserted ("pending" accesses, merged into the fetch in flight like an MSHR hit); the
 * transmit scheduler skips such a QP without counting an access and is woken by the fill.
 * Only cached QPs are in the replacement order, and they never have packets waiting.
 * entries = 0 (the default) disables the cache: no accesses are counted, behaviour unchanged. */
enum sd_qpc_policy { SD_QPC_LRU = 0, SD_QPC_FIFO = 1, SD_QPC_RANDOM = 2 };
/* Outcomes in the recorded trace; FILL and EVICT are the cache's own insertions and victims. */
enum sd_qpc_outcome { SD_QPC_HIT = 0, SD_QPC_MISS = 1, SD_QPC_PENDING = 2, SD_QPC_FILL = 3, SD_QPC_EVICT = 4 };
enum sd_qpc_access { SD_QPC_TX = 0, SD_QPC_RX = 1 };

/* Per host: configuration, live state and counters (sd_qpc_hosts() views them). */
typedef struct sd_qpc_host {
    /* configuration (sd_set_qpc) */
    int64_t fetch_latency_ps;    /* PCIe read of one context, request to fill */
    uint32_t entries;            /* cache capacity in QP contexts, 0 = no cache */
    uint32_t max_outstanding;    /* fetches in flight at once */
    uint32_t policy;             /* enum sd_qpc_policy */
    /* live state */
    uint32_t used;               /* contexts cached */
    uint32_t head, tail;         /* lru/fifo order: head = next victim, tail = newest / most recent */
    uint32_t fq_head, fq_tail;   /* fetch requests waiting for a slot, oldest first */
    uint32_t outstanding;        /* fetches in flight */
    uint32_t queued;             /* fetch requests waiting for a slot */
    uint32_t peak_outstanding;
    uint32_t peak_queued;
    /* counters */
    uint64_t hits;
    uint64_t misses;
    uint64_t pending;            /* packet arrivals for a QP whose fetch was queued or in flight */
    uint64_t tx_hits, tx_misses; /* ... of hits and misses, those of the transmit scheduler (a send
                                  * is a hit; one that first missed is counted once in tx_waited) */
    uint64_t tx_waited;          /* sends whose QP missed at least once since its previous send */
    uint64_t fetches;            /* fetches completed (fills) */
    uint64_t evictions;
    uint64_t fetch_queued;       /* misses that waited for a fetch slot */
    uint64_t fetch_wait_ps;      /* sum over fills of the time from the miss to the fill */
    uint64_t pkts_parked;        /* packets that waited for a fetch */
    uint64_t rng;                /* random policy: victim stream */
} sd_qpc_host;

/* One recorded cache event (sd_set_qpc_trace). */
typedef struct sd_qpc_rec {
    int64_t t_ps;
    uint32_t host;
    uint32_t qp;
    uint32_t outcome;            /* enum sd_qpc_outcome */
    uint32_t access;             /* enum sd_qpc_access (HIT/MISS/PENDING), else 0 */
} sd_qpc_rec;

/* Configure the QPC cache of a host's NIC (entries = 0 disables it; policy enum sd_qpc_policy:
 * random evicts a uniformly chosen cached context). Only while that cache is empty (before the
 * run, or after it drained). */
int sd_set_qpc(sd_sim *sim, uint32_t host, uint32_t entries, int64_t fetch_latency_ps, uint32_t max_outstanding,
               uint32_t policy);
/* Record the first `capacity` cache events of every host (0 = off); later ones are only counted. */
int sd_set_qpc_trace(sd_sim *sim, uint32_t capacity);
sd_qpc_host *sd_qpc_hosts(sd_sim *sim, uint32_t *count);     /* count = 0 until some host has a cache */
sd_qpc_rec *sd_qpc_trace(sd_sim *sim, uint32_t *count, uint64_t *dropped);

/* Pure helpers, exposed for unit tests. */
double sd_red_probability(uint64_t qbytes, uint64_t kmin, uint64_t kmax, double pmax);
int64_t sd_serialization_ps(uint64_t wire_bytes, uint64_t rate_bps);
int32_t sd_psn_diff(uint32_t a, uint32_t b);
uint32_t sd_ecmp_hash(uint32_t src, uint32_t dst, uint32_t sport, uint32_t dport, uint64_t seed);
uint32_t sd_wire_bytes(sd_sim *sim, uint32_t opcode, uint32_t payload);

/* The congestion-control hook to Python plug-ins: implemented by dataplane/sim.py through cffi
 * (extern "Python+C"). Returns 0, or nonzero if the plug-in raised. */
int sd_cc_python_event(void *userdata, sd_cc_io *io);
