/* sim.h: internal state of the data plane, shared by the C files (not seen by Python).
 *
 * A packet's walk through the files:
 *   nic.c (transmit scheduler builds a data packet from a QP)
 *   -> port.c (egress queue, ECN at dequeue, serialization, the wire)
 *   -> switch.c (FIB lookup + ECMP hash) -> port.c ... -> nic.c (receiver: PSN check, ACK/NAK/CNP)
 *   -> port.c ... -> nic.c (sender: ACK processing, go-back-N, completion) -> cc.c (CC event)
 * event.c is the priority queue every file schedules into; sim.c owns setup and run_until.
 */
#ifndef SOFTDPU_SIM_H
#define SOFTDPU_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "softdpu.h"
#include "softdpu_testing.h"       /* test and benchmark hooks (not the API) */
#include "qdisc.h"                 /* the queue-discipline registry (SD_QDISCS) */

#define SD_NONE UINT32_MAX
#define SD_PSN_MASK 0xFFFFFFu
#define SD_ROCE_DPORT 4791u
#define SD_TTL 64u

/* Header bytes of a RoCEv2 frame over IPv4 (IBTA Vol. 1 §9.2-9.3, Annex A17; wire.c writes them). */
#define SD_ETH_HDR 14u
#define SD_ETH_FCS 4u
#define SD_IPV4_HDR 20u
#define SD_IPV6_HDR 40u
#define SD_UDP_HDR 8u
#define SD_BTH 12u
#define SD_RETH 16u
#define SD_AETH 4u
#define SD_IMMDT 4u
#define SD_ATOMIC_ETH 28u
#define SD_ATOMIC_ACK_ETH 8u
#define SD_ICRC 4u
#define SD_CNP_PAD 16u

/* IP ECN codepoints */
#define SD_ECN_ECT0 2u
#define SD_ECN_CE 3u


/* Port events a feature may hook (port.c): the port calls each event's hooks in the order
 * port_hooks_build put them, instead of testing every feature inline. */
enum sd_port_event {
    PORT_EV_DEQUEUE = 0,         /* a packet leaves an egress queue for the serializer */
    PORT_EV_DROP = 1,            /* a packet is dropped at enqueue (queue full, link down) */
    PORT_EV_RECEIVE = 2,         /* a packet arrived at this port's node through the peer */
    PORT_NUM_EV = 3
};
enum { PORT_MAX_HOOKS = 4 };

/* Event types; an event names one object (port, host, QP or timer slot) by index. */
enum sd_event_type {
    EV_TX_DONE = 0,              /* port: serializer finished; start the next queued packet */
    EV_WIRE = 1,                 /* port: the packet at the head of its wire arrives */
    EV_NIC_WAKE = 2,             /* host port: a paced QP may send now */
    EV_RTO = 3,                  /* QP: retransmission timer */
    EV_CC_TIMER = 4,             /* QP*SD_CC_TIMERS + timer id */
    EV_POST = 5,                 /* next posted message becomes visible to its QP */
    EV_PFC = 6,                  /* port: a PFC frame arrives (aux: pause quanta, 0 = XON) */
    EV_PFC_EXPIRE = 7,           /* port: the pause time of the last XOFF may have run out */
    EV_PFC_REFRESH = 8,          /* switch port: time to repeat XOFF if still congested */
    EV_VS_EXEC = 9,              /* host: the slow path executes an upcalled packet (aux: its slot) */
    EV_QPC_FETCH = 10,           /* QP: its context arrives from host memory (qpc.c) */
    EV_RQ_REPOST = 11            /* QP: the application reposts one receive (nic.c, sd_set_qp_verbs) */
};

typedef struct sd_event {
    int64_t t;
    uint64_t key;                /* insertion sequence << 8 | type: the deterministic tie-break */
    uint32_t id;                 /* the object: port, host, QP or timer slot */
    uint32_t aux;                /* EV_WIRE: the packet at the wire head (prefetched), else SD_NONE */
} sd_event;

/* ---------------------------------------------------------------- working state of ports, QPs, paths
 * Private: Python sees the telemetry records of softdpu.h instead (sd_port_stats, sd_qp_stats,
 * sd_path_stats). Each object points at its record (st); counters and gauges live only there,
 * configuration is copied there by the setters (port_publish, qp_publish, path_publish). */

/* Ports: the egress side of a node's attachment to a link, 64-byte aligned, laid out hot to
 * cold: the first two cache lines hold everything a packet hop touches (with st's first line). */
typedef struct sd_port {
    /* line 0: serializer, wire and queue heads, the far end (all a wire arrival reads of its port) */
    _Alignas(64) int64_t busy_until;   /* the serializer is busy until this time */
    int64_t wire_event;          /* time of the pending arrival event for the wire head, -1 none */
    int64_t delay_ps;            /* propagation delay of the link */
    uint64_t rate_bps;
    uint32_t q_head[2];          /* packet list per priority (pool index, UINT32_MAX = empty) */
    uint32_t q_tail[2];
    uint32_t wire_head;          /* packets on the wire, in arrival order */
    uint32_t wire_tail;
    uint32_t peer;               /* port at the other end of the link */
    uint8_t up;                  /* 1 = link up */
    uint8_t tx_pending;          /* 1 = an EV_TX_DONE is scheduled at busy_until */
    uint8_t qdisc[2];            /* queue discipline per priority (QDISC_KIND_*, native/qdisc.h) */
    /* line 1: the record, the owner and the hooks (all a packet arriving through the peer reads
     * of this port, with the record's first line), queue lengths and capacities */
    sd_port_stats *st;           /* its telemetry record */
    uint32_t node;               /* owner node */
    uint8_t cap_tx;              /* capture sessions (bit i = session i) recording what this port sends */
    uint8_t cap_rx;              /* ... and what its node receives through it */
    uint8_t nhook[PORT_NUM_EV];  /* hooks per port event (port_hooks_build), ids in hook[ev][] */
    uint8_t hook[PORT_NUM_EV][PORT_MAX_HOOKS];
    uint8_t paused;              /* PFC: bit p = priority p may not transmit (st->paused, kept with it
                                  * by pfc.c's port_set_paused: the scheduler reads it here) */
    uint8_t at_host;             /* 1 = the owner node is a host (its kind, set with the node table) */
    uint64_t q_cap[2];           /* byte capacity per priority (drop-tail) */
    uint64_t kmin[2];            /* ECN: RED Kmin bytes per priority (red_ecn: a dequeue compares) */
    /* line 2: the rest of RED (only above Kmin) and PFC */
    uint64_t kmax[2];            /* ECN: RED Kmax bytes per priority */
    double pmax[2];              /* RED Pmax per priority (0 disables marking) */
    uint64_t rng;                /* per-port RNG stream (ECN marking, random loss) */
    uint64_t headroom;           /* PFC: headroom reserved for this ingress (bytes in flight after XOFF) */
    int64_t pause_until;         /* the received XOFF's pause time runs out at, -1 none */
    int64_t refresh_at;          /* switch ingress: next XOFF refresh while still congested, -1 none */
} sd_port;
_Static_assert(offsetof(sd_port, st) == 64, "sd_port: a wire arrival reads line 0 of its port and line 1 of the peer");

/* Path state of a QP with a path set (native/paths.c), indexed like the QPs: the state of the
 * feedback-driven policies; per-slot telemetry is in st. */
/* A path-policy parameter's value: .i for an integer one (picoseconds, counts), .d for a real
 * one (fractions); its kind is in the declaration (paths.h path_param). */
typedef union sd_path_value {
    int64_t i;
    double d;
} sd_path_value;
enum { SD_PATH_NAMES = 16 };     /* distinct parameter names over all path policies, at most */

typedef struct sd_path_state {
    sd_path_stats *st;           /* its telemetry record */
    uint16_t entropy[SD_MAX_PATHS];      /* the path set: UDP source ports, slot i */
    uint32_t weight_cum[SD_MAX_PATHS];   /* spray_weighted: cumulative weights (last = total) */
    uint8_t slot_of[1024];       /* slot of sequence s at [s % 1024] (exact while <= 1024 are out) */
    /* parameters (sd_set_path_param), generic: a policy declares their names and kinds (paths.h
     * path_param) and reads its own as p[i], i = its position in its declaration; paths.c keeps
     * every name's value (the union of the policies' names, in registry order) in named[], so
     * that a new path set of another policy finds the values given before. */
    sd_path_value p[SD_PATH_MAX_PARAMS];      /* the QP's policy's parameters, in its order */
    sd_path_value named[SD_PATH_NAMES];       /* every name's value (paths.c: path_name_id) */
    uint32_t named_set;                        /* bit n: named[n] was given */
    uint32_t pad0;
    /* reps: slots whose ACKs came back unmarked, oldest first */
    uint8_t reps_ring[32];
    uint32_t reps_head, reps_len;
    /* plb and flowlet */
    uint64_t plb_round_end;      /* the round ends when snd_una reaches this sequence */
    uint32_t plb_acks, plb_ce;   /* ACKs and CE echoes in the current round */
    uint32_t plb_cong_rounds;    /* consecutive congested rounds */
    uint32_t pad1;
    int64_t plb_suspend_until;
    int64_t last_tx_ps;          /* the QP's last data packet, -1 none */
    uint64_t policy_state[36];   /* the policy's own state (native/path_*.c casts it; e.g. clove's weights) */
} sd_path_state;

/* A reliable-connected queue pair (one end). Per-QP memory budget (with its record): see
 * tests/test_state_boundary.py. Its path set (entropies, weights) is in its sd_path_state
 * (paths.c), which exists only once some QP has a path set. */
typedef struct sd_qp {
    _Alignas(64) sd_qp_stats *st;   /* its telemetry record (rate, window, counters, configuration) */
    /* congestion control (written by the CC through sd_cc_io) */
    double line_rate_bps;        /* rate of the NIC port */
    uint64_t byte_threshold;     /* SD_EV_BYTES after this many payload bytes, 0 = off */
    uint64_t bytes_counted;      /* payload bytes sent since the last SD_EV_BYTES/reset */
    int64_t timer_at[4];         /* CC timer deadlines, -1 = off */
    int64_t timer_queued[4];     /* time of the pending event of each timer, -1 = none */
    double cc_state[24];         /* built-in CC state (layout per algorithm, see native/<cc>.c) */
    /* sender */
    uint64_t snd_una;            /* oldest unacknowledged sequence number (64-bit PSN count) */
    uint64_t snd_nxt;            /* next sequence number to send */
    uint64_t snd_end;            /* one past the last sequence number posted */
    uint64_t snd_max;            /* one past the highest sequence number ever sent */
    int64_t next_tx_ps;          /* pacing: earliest time of the next data packet */
    int64_t rto_deadline;        /* -1 = no timer */
    int64_t rto_queued;
    uint32_t host;               /* local host node */
    uint32_t port;               /* local NIC port */
    uint32_t peer_qp;            /* its peer (whose host is the peer host) */
    uint32_t peer_addr;          /* the peer QP's address: the destination (fib column) of what it sends */
    uint32_t isn;                /* initial PSN (24-bit) */
    uint32_t cc_kind;            /* enum sd_cc_kind */
    uint32_t cc_param;           /* index of the parameter block of the built-in CC */
    uint32_t sport;              /* UDP source port (ECMP entropy) */
    uint32_t una_msg;            /* oldest incomplete message, UINT32_MAX = none */
    uint32_t tx_msg;             /* message holding snd_nxt */
    uint32_t last_msg;           /* tail of the message list */
    uint32_t ring_next;          /* NIC scheduling ring links */
    uint32_t ring_prev;
    uint32_t last_wire;          /* wire bytes of the last data packet (pacing adjustment) */
    uint32_t cc_evmask;          /* bit e set = the CC wants events of type e */
    uint32_t ack_batch;          /* deliver one SD_EV_ACK per this many ACKs (aggregated), >= 1 */
    uint32_t acc_acks;           /* ACKs accumulated for the next batched SD_EV_ACK */
    uint32_t acc_ecn;            /* ... of which echoed ECN */
    uint64_t acc_bytes;          /* ... payload bytes they acknowledged */
    int64_t acc_rtt_min;         /* ... their smallest RTT sample, -1 none */
    /* receiver */
    uint8_t nak_pending;         /* a NAK was sent for the current gap */
    uint8_t ce_pending;          /* CE seen since the last ACK / CNP */
    uint8_t active;              /* 1 = in the NIC's scheduling ring */
    uint8_t cc_started;          /* SD_EV_START delivered */
    uint32_t unacked;            /* packets received since the last ACK */
    uint32_t addr;               /* its address (its port's): the source of what it sends (here: no padding) */
    uint32_t bdp_cap;            /* sr/ooo: IRN's BDP-FC, at most this many packets out (0 = off) */
    int64_t last_cnp_ps;         /* last CNP sent for this QP (notification point) */
    /* multipath transport (native/reorder.c, native/paths.c) */
    uint32_t mode;               /* enum sd_transport */
    uint32_t reorder_window;     /* sr/ooo: PSNs tracked beyond the cumulative point (power of 2) */
    uint32_t bits_off;           /* sr/ooo: this QP's bitmaps in the simulator's bitmap pool (words) */
    uint32_t path_policy;        /* index in the path-policy registry (sd_path_policy_name) */
    uint32_t npaths;             /* entropies in paths[], 0 = the QP's sport only */
    uint32_t path_next;          /* spray_rr: the next slot; plb, flowlet: the current slot */
    uint32_t ar;                 /* SD_AR_CLASS_* mask: packet classes this QP marks AR-eligible */
    uint32_t rto_low_pkts;       /* sr/ooo: use rto_low_ps while at most this many packets are out */
    int64_t rto_low_ps;          /* IRN's RTO_low (0 = always the simulator's rto_ps) */
    uint64_t path_rng;           /* spray_random / spray_weighted stream */
    uint64_t rtx_nxt;            /* sender, sr: the NACK cursor; unSACKed packets in [rtx_nxt, rtx_end) are lost */
    uint64_t rtx_end;
    uint64_t recovery;           /* sr: snd_max when the current loss recovery began, 0 = none */
    uint64_t sacked;             /* packets in [snd_una, snd_max) the receiver SACKed */
    uint64_t tmo_nxt;            /* sr/ooo: the timeout's resends pending in [tmo_nxt, tmo_end) */
    uint64_t tmo_end;
    /* sr/ooo per-packet retransmission timing (reorder.c): every transmission is stamped with the
     * transmit epoch it falls in (a new epoch starts at a send >= RTO/SD_RTO_EPOCHS after the
     * current one began); ep_end keeps the last send time of the newest SD_RTO_EPOCHS + 1 epochs */
    int64_t ep_end[9];           /* indexed by epoch mod (SD_RTO_EPOCHS + 1) */
    int64_t ep_start;            /* when the current epoch began */
    uint64_t ep;                 /* the current epoch */
    uint64_t ep_live;            /* the oldest epoch that may hold a packet neither acknowledged nor declared lost */
    int64_t una_ps;              /* sr/ooo: when snd_una last advanced (RTO_low counts from it, as IRN's timer) */
    /* verbs (nic.c): RNR, READ, ATOMIC */
    uint64_t acked_max;          /* requester: the highest sequence + 1 an ACK covered (an ACK may overtake
                                  * READ responses: snd_una stops at the READ and catches up later) */
    uint8_t rnr_timer;           /* responder: the RNR timer code of its RNR NAKs */
    uint8_t rnr_retry;           /* requester: RNR retries (7 = forever) */
    uint8_t rnr_left;            /* ... left in the current episode (reset on progress) */
    uint8_t rnr_nak_pending;     /* responder: an RNR NAK was sent for the current hole (one per hole) */
    uint8_t rd_gap;              /* requester, gbn: a READ response gap was answered by a re-request */
    uint8_t max_rd_atomic;       /* requester: READs and ATOMICs outstanding at most */
    uint8_t rd_out;              /* ... outstanding now (requested, not complete) */
    uint8_t rd_head, rd_len;     /* responder: its READ response jobs (sim->rd.jobs[qp * SD_MAX_RD_ATOMIC]) */
    uint8_t err;                 /* requester: in error (RNR retries exhausted): posts complete flushed */
    /* this end's NIC settings (sd_set_qp_nic; qp_init copies the simulator's sd_config values) */
    uint8_t cnp_mode;            /* receiver, as notification point: enum sd_cnp_mode */
    uint8_t nak_off;             /* receiver, go-back-N: sends no NAK at a gap (sd_set_qp_nak): the sender's
                                  * timeout is its only loss recovery */
    uint32_t reads_live;         /* requester: READ and ATOMIC messages released and not complete */
    uint32_t ack_interval;       /* receiver: ACK every n-th data packet (and every AckReq) */
    uint16_t mtu_payload;        /* sender: payload bytes per data packet */
    uint16_t pad_n;
    int64_t rto_ps;              /* sender: retransmission timeout */
    int64_t cnp_interval_ps;     /* receiver, SD_CNP_INTERVAL: minimum gap between its CNPs */
} sd_qp;
_Static_assert(sizeof(sd_qp_stats) % 64 == 0, "sd_qp_stats: whole cache lines, its hot lines aligned");

/* Copy an object's configuration into its record (every setter that changes it calls these). */
void port_publish(sd_sim *sim, uint32_t port);
void qp_publish(sd_sim *sim, uint32_t qp);
void path_publish(sd_sim *sim, uint32_t qp);

/* Shared-buffer state of a switch for PFC (pfc.c); enabled = 0 means drop-tail only. */
typedef struct sd_mmu {
    uint64_t buffer;             /* bytes of packet buffer */
    uint64_t reserve;            /* guaranteed bytes per ingress port */
    uint64_t resume_offset;      /* XON when shared use + this <= threshold */
    uint64_t total_hdrm;         /* sum of the headroom of its ports */
    uint64_t total_rsrv;         /* reserve x ports */
    uint64_t shared_used;        /* bytes in the shared pool */
    uint32_t alpha_shift;        /* dynamic threshold = free shared buffer >> alpha_shift */
    uint32_t enabled;
    uint32_t pause_quanta;       /* pause time carried by XOFF, in 512-bit-time quanta */
    uint32_t pad0;
} sd_mmu;

/* The INT stack of a packet in flight (indexed like the packet pool; only with int_enabled). */
typedef struct sd_int_rec {
    uint32_t nhop;
    uint32_t pad0;
    sd_int_hop hop[SD_INT_HOPS];
} sd_int_rec;

/* A parameter block of a built-in CC. */
typedef struct sd_ccp {
    uint32_t kind;
    uint32_t pad0;
    double v[SD_CC_PARAMS];
} sd_ccp;

/* The calendar event queue (event.c). A bucket's events are kept in blocks of EVQ_BLOCK: draining
 * a bucket walks a block chain (one dependent load per block, sequential lines within it) instead
 * of a chain of one node per event, which at 8,192 hosts is a cache miss per event. */
#define EVQ_BLOCK 10
typedef struct sd_evblock {
    sd_event ev[EVQ_BLOCK];
    uint32_t n;                  /* events in this block */
    uint32_t next;               /* next block of the same bucket, or free-list link */
} sd_evblock;                    /* 248 bytes */

/* The current run (event.c) is kept EVQ_RUN_AHEAD events deep, from buckets up to EVQ_RUN_PEEK
 * ahead, so the event loop can prefetch for the events coming (sim.c ev_lookahead, in
 * EVQ_STAGES stages). */
enum { EVQ_RUN_AHEAD = 16, EVQ_RUN_PEEK = 8, EVQ_STAGES = 3 };

typedef struct sd_evheap {
    sd_event *a;
    uint32_t len, cap;
} sd_evheap;

#define EVQ_SHIFT 12u                       /* 4.096 ns buckets */
#define EVQ_BUCKETS (1u << 16)              /* 268 us window */
#define EVQ_MASK (EVQ_BUCKETS - 1u)

typedef struct sd_evslot {
    uint32_t head;               /* first block, SD_NONE = empty */
    uint32_t tail;               /* last block (the one appended to) */
} sd_evslot;

typedef struct sd_evq {
    sd_evslot *slot;             /* per bucket slot (a push reads one 8-byte pair) */
    sd_evblock *blocks;
    uint32_t block_cap;
    uint32_t free_block;
    uint64_t cur;                /* current bucket (time >> EVQ_SHIFT) */
    uint64_t listed;             /* events in bucket lists */
    sd_event *run;               /* the current bucket's events, sorted when it became current */
    sd_event *tmp;               /* the sort's other buffer (run_cap events) */
    uint32_t run_pos, run_len, run_cap;   /* next to pop, events in run */
    uint32_t run_fetched[EVQ_STAGES];   /* lookahead (sim.c): the run's events before [s] went through stage s */
    uint32_t pad0;
    sd_evheap late;              /* events pushed into the current bucket after it was sorted */
    sd_evheap far;               /* events beyond the window */
    uint64_t room;               /* most pending events allowed (sd_set_event_limit), UINT64_MAX = no
                                  * cap: a push needs pending < room */
    uint64_t pending;            /* events queued: run_len - run_pos + late.len + listed + far.len */
    uint32_t ahead;              /* the run is refilled below this many events: EVQ_RUN_AHEAD with the
                                  * lookahead (sd_run_until), 1 without (fewer events go to `late`) */
    uint32_t pad1;
} sd_evq;

/* QPC cache state of one QP (qpc.c), indexed like the QPs, only once some host has a cache. */
typedef struct sd_qpc_qp {
    uint32_t prev, next;         /* lru/fifo order (cached) or fetch FIFO (queued: next only);
                                  * random policy: prev = its slot in the host's member array */
    uint32_t wait_head, wait_tail;   /* packets waiting for the context (sd_packet.next links) */
    uint32_t state;              /* QPC_ABSENT, QPC_QUEUED, QPC_FETCHING, QPC_CACHED */
    uint32_t tx_missed;          /* the transmit scheduler missed on it since its last send */
    int64_t miss_ps;             /* when the current fetch was requested */
} sd_qpc_qp;
enum { QPC_ABSENT = 0, QPC_QUEUED = 1, QPC_FETCHING = 2, QPC_CACHED = 3 };

/* A capture session (wire.c). */
typedef struct sd_capture {
    void *fp;                    /* FILE *, NULL = closed */
    uint32_t snaplen;
    uint32_t qp_a, qp_b;         /* only this QP pair (SD_NONE = all) */
    uint32_t write_error;
    int64_t t_start, t_end;
    uint64_t max_packets;
    uint64_t packets, bytes;
} sd_capture;

/* The vSwitch of one DPU (vswitch.c). */
typedef struct sd_vs_subtable {
    uint32_t mask[SD_VS_KEY_WORDS];
    uint8_t words[SD_VS_KEY_WORDS];   /* the key words its mask looks at (hashed and compared) */
    uint32_t nwords;
    uint32_t nflows;             /* 0 = unused slot */
    int32_t max_prio;            /* highest priority of its flows (lookup stops below the best found) */
    int64_t first_active_ps;     /* earliest active_ps of its flows: not probed before that */
    uint64_t hits;               /* since the last re-ranking */
} sd_vs_subtable;
typedef struct sd_vs_emc_entry {
    uint32_t key[SD_VS_KEY_WORDS];
    uint32_t flow;               /* SD_NONE = empty */
    uint32_t gen;                /* the flow slot's generation when cached */
    uint32_t version;            /* the table version when cached */
    uint32_t pad0;
} sd_vs_emc_entry;
typedef struct sd_vs_slot {
    uint32_t pkt;                /* the parked packet, SD_NONE = free slot */
    uint32_t in_port;
    uint32_t next_free;
    uint32_t pad0;
    sd_vs_action act;            /* what sd_vs_execute asked for */
} sd_vs_slot;
typedef struct sd_vs_meter {
    double rate_bps;             /* 0 = unconfigured: passes everything */
    double burst;                /* bytes */
    double tokens;
    int64_t last_ps;
} sd_vs_meter;
typedef struct sd_vswitch {
    uint32_t enabled;
    uint32_t max_flows;          /* hard capacity */
    uint32_t flow_cap;           /* allocated flow slots (grows to max_flows at install time) */
    uint32_t flow_hwm;           /* slots ever used */
    uint32_t free_flow;          /* free list through sd_vs_flow.next */
    uint32_t nbuckets;           /* power of two, >= 4 x flow_cap */
    sd_vs_flow *flows;
    uint32_t *buckets;
    sd_vs_subtable sub[SD_VS_MAX_SUBTABLES];
    uint32_t order[SD_VS_MAX_SUBTABLES];   /* used subtables, probe order */
    uint32_t nsub;
    uint32_t version;            /* bumped when a flow may shadow EMC entries */
    sd_vs_emc_entry *emc;
    uint32_t emc_entries;        /* power of two, 0 = no EMC */
    uint32_t emc_inv_prob;       /* insert with probability 1/this */
    uint64_t rng;
    sd_vs_slot *slots;           /* upcall queue slots */
    uint32_t nslots, free_slot;
    uint32_t *vf_ids;            /* global VF id of local VF n */
    uint32_t nvf, vf_cap;
    sd_vs_meter *meters;
    uint32_t nmeters;
    uint32_t pad0;
    int64_t rerank_interval_ps;
    int64_t next_rerank_ps;
} sd_vswitch;
typedef struct sd_host {
    uint32_t port;               /* its first port (link order): where a new QP is bound, SD_NONE until linked */
    uint32_t pad0;
    uint64_t misdelivered;       /* packets its NIC refused: not for this host or its QPs (nic_receive) */
} sd_host;
/* The transmit scheduler of one host port (a NIC: each port of a multi-port host schedules the
 * QPs bound to it on its own). Indexed by port; unused at switch ports. */
typedef struct sd_nic {
    uint32_t ring;               /* one QP of the scheduling ring (round-robin cursor), SD_NONE = empty */
    uint32_t nactive;            /* QPs in the ring */
    int64_t wake_queued;         /* time of the pending EV_NIC_WAKE, -1 none */
} sd_nic;
/* One node of the fabric: its kind, its index among the nodes of that kind (host h = node h,
 * switch s = the s-th switch: the row of the fib and the mmu) and its ports, node_ports[first_port
 * .. first_port + num_ports), rebuilt when links are added. */
typedef struct sd_node {
    uint8_t kind;                /* enum sd_node_kind */
    uint8_t pad0[3];
    uint32_t index;
    uint32_t first_port;
    uint32_t num_ports;
} sd_node;

/* ---------------------------------------------------------------- module-owned state
 * Each feature owns one part of struct sd_sim, with its init / free / memory accounting in its
 * own file and one line in sim.c's module table (SD_MODULES): sd_create runs every init in
 * table order, sd_destroy every free in reverse, sd_memory_bytes / sd_mem_report add up every
 * mem_bytes. Lazily allocated parts (paths, reorder, qdisc, vswitch, qpc) stay NULL/empty until
 * a setter of theirs needs them; eager ones allocate in init. */
typedef struct sd_paths_mod {    /* paths.c: path sets, per QP once some QP has a path set */
    sd_path_state *state;
    sd_path_stats *stats;        /* ... and their telemetry records (sd_path_state.st) */
    uint32_t cap;                /* rows of both */
    uint32_t pad0;
} sd_paths_mod;
typedef struct sd_rd_job {       /* a READ or ATOMIC being answered: responses psn + sent .. psn + npkts - 1 */
    uint32_t psn;                /* PSN of its first response */
    uint32_t npkts;
    uint32_t sent;
    uint32_t msg;                /* the requester's message */
    uint64_t offset;             /* payload offset of its first response within the message */
    uint32_t atomic;             /* 1 = the ATOMIC Acknowledge of an ATOMIC (one, no payload) */
    uint32_t pad0;
} sd_rd_job;
typedef struct sd_rd_replay {    /* an executed ATOMIC, for a duplicate request (IBTA §9.7.5.2.5) */
    uint32_t psn;
    uint32_t valid;
    uint64_t orig;
} sd_rd_replay;
typedef struct sd_rd_atom {      /* a QP end's ATOMIC target and its recent ATOMICs' results */
    uint64_t word;
    uint32_t head;
    uint32_t pad0;
    sd_rd_replay replay[SD_MAX_RD_ATOMIC];
} sd_rd_atom;
typedef struct sd_rd_mod {       /* nic.c: READ/ATOMIC responder state, per QP once one is posted */
    sd_rd_job *jobs;             /* SD_MAX_RD_ATOMIC per QP */
    sd_rd_atom *atom;            /* per QP, once an ATOMIC is posted or a word is set */
    int64_t *repost;             /* per QP: a consumed receive is reposted this long after (< 0 never), once
                                  * sd_set_qp_verbs gives some QP a delay (else 0: at once) */
    uint32_t cap;                /* QP rows of jobs */
    uint32_t atom_cap;           /* ... of atom */
    uint32_t repost_cap;         /* ... of repost */
    uint32_t pad0;
} sd_rd_mod;
typedef struct sd_reorder_mod {  /* reorder.c: the bitmap pool of sr/ooo QPs, grown at setup only */
    uint64_t *bits;
    uint32_t len, cap;           /* words */
} sd_reorder_mod;
typedef struct sd_pfc_mod {      /* pfc.c: shared-buffer state per switch */
    sd_mmu *mmu;
} sd_pfc_mod;
typedef struct sd_int_mod {      /* int.c: the INT stack per pool packet, NULL unless cfg.int_enabled */
    sd_int_rec *rec;
} sd_int_mod;
typedef struct sd_capture_mod {  /* wire.c: pcap sessions */
    sd_capture session[SD_MAX_CAPTURES];
} sd_capture_mod;
typedef struct sd_qdisc_mod {    /* qdisc.c and the disciplines (qdisc_*.c): their side arrays */
    void *state[SD_NUM_QDISC];   /* per discipline: its state_bytes per queue (or per port), NULL until
                                  * sd_set_qdisc first installs it (e.g. CoDel's, the traffic classes) */
    int64_t *enq_ps;             /* per pool packet: enqueue time, NULL until a discipline needs sojourn times */
    uint8_t *qp_dscp;            /* per QP: its data packets' DSCP, 0xFF = cfg.dscp_data; NULL = none set */
    uint8_t dscp_class[64];      /* DSCP -> traffic class */
} sd_qdisc_mod;
typedef struct sd_vswitch_mod {  /* vswitch.c: the DPUs' vSwitches, NULL until a DPU enables one */
    sd_vswitch *dpu;             /* per host */
    sd_vs_stats *stats;          /* per host */
    uint32_t *meta;              /* per pool packet: SD_VS_META_* bits */
    sd_vs_vf *vfs;
    uint32_t nvfs, vf_cap;
    uint32_t *qp_fn;             /* per QP: its VF (global id), SD_NONE = the PF */
    uint32_t qp_fn_cap;
    sd_vs_upcall *upq;           /* upcalls not yet drained by the control plane */
    uint32_t upq_head, upq_len, upq_cap;
    uint64_t parked_data;        /* data packets waiting in upcall slots (in flight for conservation) */
    int64_t lookahead_ps;        /* sd_run_until may run this far past the oldest pending upcall */
    uint32_t fail_alloc;         /* test hook (sd_vs_debug_fail_alloc): the n-th vSwitch setup allocation from
                                  * now fails, 0 = none */
} sd_vswitch_mod;
typedef struct sd_qpc_mod {      /* qpc.c: the QP-context cache, NULL until sd_set_qpc */
    sd_qpc_host *hosts;          /* per host */
    sd_qpc_qp *qps;              /* per QP */
    uint32_t **members;          /* per host, random policy: the cached QPs (entries slots) */
    uint32_t qps_cap;
    uint32_t trace_cap, trace_len;
    sd_qpc_rec *trace;
    uint64_t trace_dropped;
    uint64_t parked_data;        /* data packets waiting for a context (in flight for conservation) */
} sd_qpc_mod;

/* A module: its name (sd_mem_report), init at sd_create (SD_OK or SD_ENOMEM; NULL = nothing),
 * free at sd_destroy (must accept a partly initialised simulator), bytes it holds now. */
typedef struct sd_module {
    const char *name;
    int (*init)(sd_sim *sim);
    void (*free)(sd_sim *sim);
    uint64_t (*mem_bytes)(const sd_sim *sim);
} sd_module;

struct sd_sim {
    sd_config cfg;
    int64_t now;
    uint64_t seq;
    char err[256];
    void *userdata;
    sd_counters ctr;
    /* event queue (event.c) */
    sd_evq evq;
    int fatal;                   /* an event could not be scheduled mid-run (SD_ENOMEM): sticky, the run
                                  * cannot go on (event.c ev_fail); fatal_msg says which and when */
    char fatal_msg[256];
    /* packet pool */
    sd_packet *pkts;
    uint32_t free_head;          /* freed packets (LIFO, sd_packet.next links) */
    uint32_t pkt_bump;           /* packets [pkt_bump, pkt_pool) were never used (pkt_alloc) */
    /* fabric */
    uint32_t num_nodes;
    sd_host *hosts;
    sd_node *nodes;              /* num_nodes: kind, index, port list */
    sd_nic *nics;                /* 2 x max_links: the transmit scheduler of each host port */
    uint32_t *node_ports;        /* num_ports: the ports grouped by node (sd_node.first_port) */
    sd_port *ports;
    sd_port_stats *port_stats;   /* per port: its telemetry record (sd_port.st) */
    uint32_t num_ports;
    /* addresses (sd_set_addresses): what a packet's src/dst name and what a fib column is, a group
     * of ports of one host; by default address h = host h with all its ports */
    uint32_t num_addrs;          /* fib width */
    uint32_t *addr_host;         /* num_addrs: the host node of each address */
    uint32_t *port_addr;         /* 2 x max_links: the address of each host port, SD_NONE at switch ports */
    uint8_t addrs_declared;      /* sd_set_addresses was called (then the fib may hold SD_NONE) */
    uint64_t no_route;           /* packets a switch dropped for lack of a route to their address */
    /* The FIB, grouped (sd_install_routes): the set at switch sw for address a is
     * fib[sw * fib_groups + addr_group[a]], unless that entry is SD_FIB_LOCAL: then the address's
     * own entry for sw among fib_local_sw/set[fib_local_off[a] .. fib_local_off[a+1]). A group is
     * the addresses attached to the same switches (a ToR's hosts), so a fat-tree's table holds a
     * column per ToR and an entry per host at its own ToR: 2.6 MB instead of 40 MiB at k = 32.
     * sd_install_fib (flat) installs one group per address. */
    uint32_t *fib;               /* (num_switches x fib_groups) ECMP set ids, SD_NONE, SD_FIB_LOCAL */
    uint32_t fib_groups;
    uint32_t *addr_group;        /* num_addrs */
    uint32_t *fib_local_off;     /* num_addrs + 1 */
    uint32_t *fib_local_sw;      /* switch index of each local entry */
    uint32_t *fib_local_set;
    uint32_t *set_off;
    uint32_t *set_ports;
    uint32_t num_sets;
    uint64_t *switch_seed;       /* per-switch ECMP hash seed */
    double *loss;                /* per port: random loss probability, NULL = none anywhere */
    uint8_t *ar_on;              /* per switch: adaptive routing enabled, NULL = none anywhere */
    uint8_t lookahead_mode;      /* sd_debug_set_lookahead: 0 automatic, 1 off, 2 on */
    /* transport */
    sd_qp *qps;
    sd_qp_stats *qp_stats;       /* per QP: its telemetry record (sd_qp.st), cfg.max_qps rows */
    uint32_t num_qps;
    sd_msg *msgs;
    uint32_t num_msgs;
    uint32_t *post_order;        /* messages sorted by post time (stable) */
    uint32_t post_next;          /* next index in post_order to release */
    uint32_t post_sorted;        /* post_order[0..post_sorted) is sorted */
    int64_t post_queued;         /* time of the pending EV_POST, -1 none */
    sd_completion *cring;
    uint32_t cring_head, cring_len;
    /* congestion control */
    sd_ccp *ccp;                 /* CC parameter blocks */
    uint32_t num_ccp, cap_ccp;
    sd_cc_trace *trace;
    uint32_t trace_len;
    int cb_error;                /* a Python plug-in raised: stop the run */
    int cc_fault;                /* a CC set an invalid rate (SD_ECC): stop the run, err names it */
    /* the feature modules */
    sd_paths_mod paths;
    sd_reorder_mod reorder;
    sd_rd_mod rd;
    sd_pfc_mod pfc;
    sd_int_mod intl;
    sd_capture_mod capture;
    sd_qdisc_mod qdisc;
    sd_vswitch_mod vsw;
    sd_qpc_mod qpc;
    /* run budget (sd_set_run_budget) and stall detection (sd_set_stall_limit) */
    uint64_t max_events;         /* sd_run_until stops with SD_STOP_MAX_EVENTS at this many events, 0 = never */
    uint64_t chunk_events;       /* ... and with SD_STOP_EVENTS after this many in one call, 0 = never */
    int64_t wall_deadline_ns;    /* sd_run_until stops with SD_STOP_WALL at this monotonic time, 0 = never */
    uint64_t poll_at;            /* sd_run_until leaves its fast path at this event count: the event
                                  * budget's stop, or the next reading of the wall clock */
    uint64_t stall_limit;        /* most events at one picosecond, 0 = the default (sd_set_stall_limit) */
    uint64_t same_instant;       /* events handled at last_ev_t after the first one */
    int64_t last_ev_t;           /* time of the last event handled, -1 before the first */
    char py_cc_name[48];         /* the Python plug-in's name, for error messages */
};

/* The module table (sim.c) and each module's functions (in its own file). */
extern const sd_module SD_MODULES[];
extern const uint32_t SD_NUM_MODULES;
int paths_reserve(sd_sim *sim, uint32_t qp);          /* sim.c, setup: path state for QPs 0..qp */
void reorder_free(sd_sim *sim);
uint64_t reorder_memory_bytes(const sd_sim *sim);
int pfc_init(sd_sim *sim);
void pfc_free(sd_sim *sim);
uint64_t pfc_memory_bytes(const sd_sim *sim);
int int_init(sd_sim *sim);
void int_free(sd_sim *sim);
uint64_t int_memory_bytes(const sd_sim *sim);
void capture_free(sd_sim *sim);
uint64_t capture_memory_bytes(const sd_sim *sim);
uint32_t crc32_update(uint32_t c, const uint8_t *p, size_t n);   /* wire.c: CRC-32 without pre/post inversion */
int qdisc_init(sd_sim *sim);


/* error.c-style helper in sim.c */
int sd_fail(sd_sim *sim, int code, const char *fmt, ...);

/* event.c */
const char *ev_type_name(uint32_t type);
int ev_init(sd_sim *sim, uint32_t capacity);
void ev_free(sd_sim *sim);
int ev_push_slow(sd_sim *sim, int64_t t, uint32_t type, uint32_t id, uint32_t aux);
const sd_event *ev_peek_slow(sd_sim *sim);
void ev_take_slow(sd_sim *sim, sd_event *out);
int ev_pop(sd_sim *sim, sd_event *out);                  /* ev_peek + ev_take; 0 = nothing pending */

/* Schedule an event (SD_OK, or the sticky SD_ENOMEM of event.c's ev_fail). Inline for the common
 * case, a bucket inside the window whose last block has room: one slot pair and one block line. */
static inline int ev_push(sd_sim *sim, int64_t t, uint32_t type, uint32_t id, uint32_t aux)
{
    sd_evq *q = &sim->evq;
    uint64_t b = (uint64_t)t >> EVQ_SHIFT;
    if (__builtin_expect(b - q->cur - 1 < EVQ_BUCKETS - 1 && q->pending < q->room, 1)) {
        const sd_evslot *sl = &q->slot[b & EVQ_MASK];
        if (sl->head != SD_NONE) {
            sd_evblock *k = &q->blocks[sl->tail];
            if (k->n < EVQ_BLOCK) {
                k->ev[k->n++] = (sd_event){t, (sim->seq++ << 8) | type, id, aux};
                q->listed++;
                if (++q->pending > sim->ctr.heap_peak)
                    sim->ctr.heap_peak = q->pending;
                return SD_OK;
            }
        }
    }
    return ev_push_slow(sim, t, type, id, aux);
}

/* The events' total order, (time, key) lexicographic: a runs before b (event.c's heaps use it too). */
static inline int ev_before(const sd_event *a, const sd_event *b)
{
    return a->t < b->t || (a->t == b->t && a->key < b->key);
}

/* The earliest pending event, NULL if none; the run is refilled first when it is short. Inline
 * while the run is deep enough and its next event comes before `late`'s first (if any): an
 * event in `late` can wait there while many of the run's go by. */
static inline const sd_event *ev_peek(sd_sim *sim)
{
    sd_evq *q = &sim->evq;
    if (__builtin_expect(q->run_len - q->run_pos >= q->ahead, 1)) {
        const sd_event *r = &q->run[q->run_pos];
        if (__builtin_expect(q->late.len == 0, 1) || ev_before(r, &q->late.a[0]))
            return r;
    }
    return ev_peek_slow(sim);
}

/* Remove the event ev_peek returned (nothing may be pushed in between): the run's next unless
 * `late`'s first comes before it. */
static inline void ev_take(sd_sim *sim, sd_event *out)
{
    sd_evq *q = &sim->evq;
    if (__builtin_expect(q->run_pos < q->run_len, 1) &&
        (__builtin_expect(q->late.len == 0, 1) || ev_before(&q->run[q->run_pos], &q->late.a[0]))) {
        q->pending--;
        *out = q->run[q->run_pos++];
    } else {
        ev_take_slow(sim, out);
    }
}

uint64_t ev_memory_bytes(const sd_sim *sim);

/* setup-time growth (sim.c): at least `need` elements, doubling, new ones zeroed; 0 = out of memory */
int grow_array(void **arr, uint32_t *cap, size_t elem, uint32_t need);
void *alloc_lines(uint32_t n, size_t elem);       /* zeroed, 64-byte aligned */
int grow_lines(void **arr, uint32_t *cap, size_t elem, uint32_t need);   /* grow_array for alloc_lines arrays */
/* pool (sim.c) */
uint32_t pkt_alloc(sd_sim *sim);
void pkt_free(sd_sim *sim, uint32_t p);

/* port.c: port hooks. A feature that acts on packets at a port event (enum sd_port_event)
 * registers a hook in port.c's table: wants() says at setup whether a port runs it, run() is
 * called with the port, the packet's priority and the packet. port_hooks_build() lists a port's
 * hooks per event, in table order (the order is part of the model: PFC releases the buffer
 * first, INT then stamps the queue left behind, capture records the stamped packet), whenever a
 * setter changes what a port wants; the per-packet path only walks that list. */
typedef struct port_hook {
    const char *name;
    uint32_t event;                                        /* enum sd_port_event */
    int (*wants)(const sd_sim *sim, const sd_port *pt);    /* setup time */
    void (*run)(sd_sim *sim, sd_port *pt, uint32_t prio, uint32_t p);
} port_hook;
extern const port_hook pfc_hook_dequeue, pfc_hook_drop, int_hook_stamp, capture_hook_tx, capture_hook_rx;
extern const port_hook *const port_hook_table[];
void port_hooks_build(sd_sim *sim, uint32_t port);
static inline void port_hooks_run(sd_sim *sim, sd_port *pt, uint32_t ev, uint32_t prio, uint32_t p)
{
    for (uint32_t i = 0, n = pt->nhook[ev]; i < n; i++)
        port_hook_table[pt->hook[ev][i]]->run(sim, pt, prio, p);
}

/* port.c */
void port_enqueue(sd_sim *sim, uint32_t port, uint32_t p);
void port_tx_done(sd_sim *sim, uint32_t port);
void port_kick(sd_sim *sim, uint32_t port);      /* an idle port starts what it may send */
void port_wire_arrive(sd_sim *sim, uint32_t port);
int port_can_send_data(sd_sim *sim, uint32_t port);   /* else arranges a pull when free */
uint64_t rng_next(uint64_t *state);
double rng_uniform(uint64_t *state);

/* port.c: a packet that will not arrive (counted as data or control) */
void count_drop(sd_sim *sim, sd_packet *pk);
/* vswitch.c: the DPU between the NIC transport and its uplink */
void dpu_transmit(sd_sim *sim, uint32_t host, uint32_t p);
void dpu_receive(sd_sim *sim, uint32_t host, uint32_t p);
void vs_exec_event(sd_sim *sim, uint32_t host, uint32_t slot);
void vs_free(sd_sim *sim);
uint64_t vs_memory_bytes(const sd_sim *sim);
/* wire.c */
void capture_packet(sd_sim *sim, uint8_t mask, const sd_packet *pk);

/* pfc.c */
int pfc_admit(sd_sim *sim, uint32_t in_port, sd_packet *pk);    /* 0 = no buffer: drop */
void pfc_release(sd_sim *sim, sd_packet *pk);
void pfc_frame_arrive(sd_sim *sim, uint32_t port, uint32_t quanta);
void pfc_expire(sd_sim *sim, uint32_t port);
void pfc_refresh(sd_sim *sim, uint32_t port);

/* int.c */
void int_push_hop(sd_sim *sim, const sd_port *pt, uint32_t p);
uint32_t int_rate_index(uint64_t rate_bps);

/* reorder.c: sr/ooo receiver and sender bookkeeping */
void reorder_receive(sd_sim *sim, uint32_t qi, sd_packet *pk);
int reorder_hold_range(sd_sim *sim, sd_qp *q, uint32_t psn, uint32_t n);   /* a READ request held out of order */
uint32_t reorder_drain(sd_sim *sim, uint32_t qi);                          /* ePSN over what is held */
uint64_t reorder_sacked_run(sd_sim *sim, const sd_qp *q, uint64_t from);    /* first seq >= from not SACKed */
int reorder_sack(sd_sim *sim, uint32_t qi, uint32_t psn, int nak);          /* a READ response as a SACK */
void reorder_restamp(sd_sim *sim, sd_qp *q, uint64_t from, uint64_t to);    /* READ PSNs still due: from now */
void reorder_ack(sd_sim *sim, uint32_t qi, const sd_packet *pk, int nak);
void reorder_clear_acked(sd_sim *sim, sd_qp *q, uint64_t old_una, uint64_t new_una);
enum { SD_RTX_NACK = 1, SD_RTX_TIMEOUT = 2 };   /* which loss detection a retransmission serves */
int reorder_next_rtx(sd_sim *sim, sd_qp *q, uint64_t *seq);   /* 0 = nothing to resend, else SD_RTX_* */
void reorder_sent_rtx(sd_sim *sim, sd_qp *q, uint64_t seq, int kind);
void reorder_stamp(sd_sim *sim, sd_qp *q, uint64_t seq);     /* at every transmission */
int64_t reorder_deadline(const sd_sim *sim, const sd_qp *q, int64_t rto);
uint64_t reorder_timeout(sd_sim *sim, sd_qp *q, int64_t rto, int *live);   /* packets declared lost */

/* paths.c */
uint16_t path_pick(sd_sim *sim, uint32_t qi, uint64_t seq, uint8_t *slot_flags);
void path_feedback(sd_sim *sim, uint32_t qi, const sd_packet *ack, int nak);
void path_timeout(sd_sim *sim, uint32_t qi);

/* switch.c */
void switch_receive(sd_sim *sim, uint32_t node, uint32_t in_port, uint32_t p);

/* nic.c */
void nic_send_ack(sd_sim *sim, sd_qp *q, uint8_t syndrome, uint32_t psn, int64_t ts_echo, uint32_t acked,
                  uint32_t sack);
int nic_has_work(sd_sim *sim, sd_qp *q);
void nic_receive(sd_sim *sim, uint32_t host, uint32_t p);
void nic_pull(sd_sim *sim, uint32_t host);          /* every port of a host */
void nic_pull_port(sd_sim *sim, uint32_t port);
void nic_wake(sd_sim *sim, uint32_t port);
void nic_rebind(sd_sim *sim, uint32_t qp, uint32_t port);
void nic_rto(sd_sim *sim, uint32_t qp);
void nic_activate(sd_sim *sim, uint32_t qp);
void nic_post_release(sd_sim *sim);

/* qpc.c: the QP-context cache; each returns 1 when the caller may go on with the QP now */
int qpc_tx_access(sd_sim *sim, uint32_t qp);          /* 0: skip it, its context is on the way */
int qpc_rx_access(sd_sim *sim, uint32_t qp, uint32_t p);   /* 0: the packet now waits for the fill */
void qpc_fetch_done(sd_sim *sim, uint32_t qp);
int qpc_reserve(sd_sim *sim, uint32_t num_qps);       /* setup: per-QP state for this many QPs */
void qpc_free(sd_sim *sim);
uint64_t qpc_memory_bytes(const sd_sim *sim);
/* nic.c: what nic_receive does once the QP's context is at hand */
void nic_process(sd_sim *sim, uint32_t p);
/* nic.c, verbs: a message arrived whole at the responder (its last PSN passed), the receive repost
 * event, and which packets consume a receive or end a message */
void nic_rx_msg_done(sd_sim *sim, uint32_t qi, uint32_t last_psn, uint32_t msg);
void nic_rq_repost(sd_sim *sim, uint32_t qi);
int nic_recv_ready(const sd_sim *sim, const sd_qp *q, const sd_packet *pk);
void nic_rnr_nak(sd_sim *sim, sd_qp *q, const sd_packet *pk);
void rd_free(sd_sim *sim);
int rd_reserve(sd_sim *sim);                          /* READ jobs for every QP (setup time) */
int rd_reserve_atom(sd_sim *sim);                     /* ATOMIC words for every QP (setup time) */
uint64_t rd_memory_bytes(const sd_sim *sim);
static inline int op_is_last(uint32_t op)      /* the last packet of a request message (or of a READ's responses) */
{
    return op == SD_OP_SEND_LAST || op == SD_OP_SEND_LAST_IMM || op == SD_OP_SEND_ONLY || op == SD_OP_SEND_ONLY_IMM ||
           op == SD_OP_WRITE_LAST || op == SD_OP_WRITE_LAST_IMM || op == SD_OP_WRITE_ONLY ||
           op == SD_OP_WRITE_ONLY_IMM || op == SD_OP_READ_RESP_LAST || op == SD_OP_READ_RESP_ONLY;
}
static inline int op_needs_recv(uint32_t op)   /* consumes a posted receive (IBTA §9.7.5.2.8) */
{
    return op <= SD_OP_SEND_ONLY_IMM || op == SD_OP_WRITE_LAST_IMM || op == SD_OP_WRITE_ONLY_IMM;
}
static inline int op_is_read_resp(uint32_t op)   /* READ responses and the ATOMIC Acknowledge */
{
    return (op >= SD_OP_READ_RESP_FIRST && op <= SD_OP_READ_RESP_ONLY) || op == SD_OP_ATOMIC_ACK;
}
static inline int op_is_rd_req(uint32_t op)      /* a READ or ATOMIC request */
{
    return op == SD_OP_READ_REQ || op == SD_OP_CMP_SWAP || op == SD_OP_FETCH_ADD;
}
static inline int verb_is_rd(uint32_t verb)      /* answered by the responder: READ and ATOMICs */
{
    return verb == SD_VERB_READ || verb == SD_VERB_ATOMIC_CAS || verb == SD_VERB_ATOMIC_FADD;
}
static inline int op_has_imm(uint32_t op)
{
    return op == SD_OP_SEND_LAST_IMM || op == SD_OP_SEND_ONLY_IMM || op == SD_OP_WRITE_LAST_IMM ||
           op == SD_OP_WRITE_ONLY_IMM;
}
static inline int op_has_reth(uint32_t op)
{
    return op == SD_OP_WRITE_FIRST || op == SD_OP_WRITE_ONLY || op == SD_OP_WRITE_ONLY_IMM || op == SD_OP_READ_REQ;
}
static inline int op_has_aeth(uint32_t op)
{
    return op == SD_OP_ACK || op == SD_OP_READ_RESP_FIRST || op == SD_OP_READ_RESP_LAST || op == SD_OP_READ_RESP_ONLY ||
           op == SD_OP_ATOMIC_ACK;
}

/* qdisc.c: queue disciplines of a port's priority queue (a provider table, as the CC twins).
 * Each (port, priority) queue is a FIFO in sd_port (q_head/q_tail/q_bytes) and names its
 * discipline in sd_port.qdisc[prio]; the discipline decides admission (enqueue: after the
 * byte-capacity check, 1 = admit, 0 = drop), takes the next packet (dequeue) and acts on the
 * departing packet with the bytes left behind (on_dequeue: marking). NULL hooks mean the
 * defaults: admit, FIFO head, nothing (port.c calls no function for them; drop-tail is all
 * defaults, so a port without a discipline pays nothing). Per-queue state lives in the
 * discipline's own side arrays, allocated by setup() when sd_set_qdisc installs it (never on
 * the per-packet path). params: the declarations below, ended by {NULL} (<= SD_QDISC_PARAMS);
 * sd_set_qdisc checks every value against its declaration, then calls validate() for the rules
 * that tie parameters together (kmax >= kmin: NULL, or "<parameter> must be <rule>, got <value>"
 * written into why, e.g. with QDISC_NEED). */
/* A declared parameter of a provider, a queue discipline (qdisc_param) or a path policy
 * (path_param, paths.h): name; kind (SD_QDISC_PARAM_INT = SD_PATH_PARAM_INT: a count, bytes or
 * ps, an integer; SD_QDISC_PARAM_REAL = SD_PATH_PARAM_REAL: a fraction); the closed range
 * [lo, hi] every value must lie in (and be finite), with the rule in words for the error
 * ("<name> must be [an integer] <rule>, got <value>"); zero_off = 1: 0 is accepted as well,
 * outside the range (off: a strict-priority class's quantum). Lists end with {NULL}. Checked at
 * setup only (sd_param_in_range), never per packet. For a discipline, a parameter's position in
 * params is its index in sd_set_qdisc's values. */
typedef struct sd_param_decl {
    const char *name;
    uint32_t kind;
    double lo, hi;
    const char *rule;
    uint32_t zero_off;
} sd_param_decl;
_Static_assert((int)SD_QDISC_PARAM_INT == (int)SD_PATH_PARAM_INT && (int)SD_QDISC_PARAM_REAL == (int)SD_PATH_PARAM_REAL,
               "one declaration type: the two registries' kinds agree");
/* v (finite) lies in d's range, or is the 0 that d's zero_off accepts. */
static inline int sd_param_in_range(const sd_param_decl *d, double v)
{
    return (v >= d->lo && v <= d->hi) || (d->zero_off && v == 0);
}
typedef sd_param_decl qdisc_param;
typedef struct qdisc_ops {
    const char *name;
    const qdisc_param *params;
    const char *(*validate)(const double *p, char *why, size_t len);
    int (*setup)(sd_sim *sim, uint32_t port, uint32_t prio, const double *p);
    int (*enqueue)(sd_sim *sim, sd_port *pt, uint32_t prio, uint32_t p);
    uint32_t (*dequeue)(sd_sim *sim, sd_port *pt, uint32_t prio);
    void (*on_dequeue)(sd_sim *sim, sd_port *pt, uint32_t prio, uint32_t p);
    /* Its side state: state_bytes per queue (per_port = 0) or per port (per_port = 1), zeroed,
     * at sim->qdisc.state[QDISC_KIND_<name>] (the provider casts it to its own struct and
     * indexes it by port * SD_NUM_PRIO + prio, or by port); allocated (before setup), freed
     * and counted by qdisc.c, never on the per-packet path. 0 = none. */
    size_t state_bytes;
    uint32_t per_port;
    /* A discipline that takes the whole port (both priorities name it) schedules it: the priority
     * to serve next (-1 none; port.c) and the data packets held in its own queues (conservation).
     * NULL for the per-queue ones: control before data, the FIFOs of sd_port. */
    int (*pick)(sd_sim *sim, sd_port *pt);
    uint64_t (*held_data)(const sd_sim *sim, uint32_t port);
} qdisc_ops;
/* The registry (native/qdisc.h, one line each): qd_<name> and qdisc_table[QDISC_KIND_<name>]. */
#define SD_QDISC_EXTERN_(name) extern const qdisc_ops qd_##name;
SD_QDISCS(SD_QDISC_EXTERN_)
#undef SD_QDISC_EXTERN_
extern const qdisc_ops *const qdisc_table[SD_NUM_QDISC];
/* In a validate() (p, why, len and the qdisc_param table `params` in scope): parameter i must
 * satisfy cond, a rule between parameters (each one's range is checked before validate runs). */
#define QDISC_NEED(cond, i, rule) \
    do { if (!(cond)) return cc_bad(why, len, params[i].name, rule, p[i]); } while (0)
/* The FIFO dequeue (the default). */
static inline uint32_t qdisc_fifo_dequeue(sd_sim *sim, sd_port *pt, uint32_t prio)
{
    uint32_t p = pt->q_head[prio];
    sd_packet *pk = &sim->pkts[p];
    pt->q_head[prio] = pk->next;
    if (pk->next == SD_NONE)
        pt->q_tail[prio] = SD_NONE;
    pt->st->q_bytes[prio] -= pk->wire;
    return p;
}
void qdisc_free(sd_sim *sim);
uint64_t qdisc_memory_bytes(const sd_sim *sim);
/* The DSCP a packet carries: CNPs and ACK/NAKs the configured ones, data its QP's (sd_set_qp_dscp)
 * or dscp_data. The wire encoding and the traffic classes read it here. */
static inline uint32_t pkt_dscp(const sd_sim *sim, const sd_packet *pk)
{
    if (pk->opcode == SD_OP_CNP)
        return sim->cfg.dscp_cnp;
    if (pk->opcode == SD_OP_ACK)
        return sim->cfg.dscp_ack;
    if (sim->qdisc.qp_dscp && pk->dqp < sim->num_qps && sim->qdisc.qp_dscp[pk->dqp] != 0xFF)
        return sim->qdisc.qp_dscp[pk->dqp];
    return sim->cfg.dscp_data;
}

/* CE-mark pk at port pt (an ECT packet not yet marked); counts it on the port and the fabric. */
static inline void qdisc_mark(sd_sim *sim, sd_port *pt, sd_packet *pk)
{
    if (pk->ecn != SD_ECN_CE) {
        pk->ecn = SD_ECN_CE;
        pt->st->ecn_marked++;
        sim->ctr.ecn_marked++;
    }
}

/* red_ecn at dequeue: RED-style ECN marking on the bytes left behind (HPCC repo
 * switch-node.cc::SwitchNotifyDequeue). Its provider's on_dequeue (qdisc.c) calls this; port_start
 * calls it directly, because red_ecn is the discipline of nearly every switch port. */
static inline void qdisc_red_on_dequeue(sd_sim *sim, sd_port *pt, uint32_t prio, uint32_t p)
{
    sd_packet *pk = &sim->pkts[p];
    if (pk->ecn != 0 && pt->st->q_bytes[prio] > pt->kmin[prio]) {
        double pr = sd_red_probability(pt->st->q_bytes[prio], pt->kmin[prio], pt->kmax[prio], pt->pmax[prio]);
        if (pr >= 1.0 || rng_uniform(&pt->rng) < pr)
            qdisc_mark(sim, pt, pk);
    }
}

/* cc.c */
void cc_event(sd_sim *sim, uint32_t qp, uint32_t type, const sd_cc_io *in);
void cc_timer_fire(sd_sim *sim, uint32_t slot);
void cc_count_bytes(sd_sim *sim, uint32_t qp, uint32_t payload);
void cc_resume_timers(sd_sim *sim, uint32_t qp);

/* C twins of congestion/<name>.py: a parameter list, a validator and an event handler each.
 * validate() checks a block whose values sd_add_cc_params() already found finite; it returns
 * NULL, or writes "<parameter> must be <rule>, got <value>" (cc_bad) into why and returns it.
 * The Python reference's check_params() applies the same rules in the same order with the same
 * words (tests/test_cc_params.py). */
typedef struct cc_twin {
    const char *name;
    const char *const *params;   /* parameter names, NULL-terminated (<= SD_CC_PARAMS) */
    const char *(*validate)(const double *p, char *why, size_t len);
    void (*event)(const double *p, double *st, sd_cc_io *io);
} cc_twin;
extern const cc_twin cc_dcqcn, cc_dctcp, cc_timely, cc_hpcc, cc_swift, cc_nscc;
const cc_twin *cc_twin_of(uint32_t kind);
/* the name of QP qi's congestion control, for error messages */
const char *cc_name(const sd_sim *sim, uint32_t qi);
const char *cc_bad(char *why, size_t len, const char *name, const char *rule, double value);
/* In a validator (p, why, len and the params table in scope): parameter i must satisfy cond. */
#define CC_NEED(cond, i, rule) \
    do { if (!(cond)) return cc_bad(why, len, params[i], rule, p[i]); } while (0)
/* Shared rules (the same strings in congestion/api.py) */
#define CC_RULE_RATE ">= 1e+06 (the rate floor, 1 Mb/s)"
#define CC_MAX_PS 1e15           /* time parameters that become int64 deadlines: <= 1000 s */
#define CC_MAX_BYTES 1e15        /* byte parameters that become uint64 windows or counters */

static inline int node_is_host(const sd_sim *sim, uint32_t node)
{
    return sim->nodes[node].kind == SD_NODE_HOST;
}

/* The FIB entry of switch index sw for address a's group: a set, SD_NONE or SD_FIB_LOCAL. */
static inline const uint32_t *fib_entry(const sd_sim *sim, uint32_t sw, uint32_t a)
{
    return &sim->fib[(size_t)sw * sim->fib_groups + sim->addr_group[a]];
}

/* The ECMP set of switch index sw towards address a (SD_NONE: no route). */
uint32_t fib_local(const sd_sim *sim, uint32_t sw, uint32_t a);
static inline uint32_t fib_set(const sd_sim *sim, uint32_t sw, uint32_t a)
{
    uint32_t s = *fib_entry(sim, sw, a);
    return s == SD_FIB_LOCAL ? fib_local(sim, sw, a) : s;
}

/* ECMP: the member (0..n-1) of an n-port set that a packet from src to dst with UDP source port
 * sport takes at switch index sw (switch.c: the hash, salted with the switch's seed). */
static inline uint32_t ecmp_pick(const sd_sim *sim, uint32_t sw, uint32_t n, uint32_t src, uint32_t dst,
                                 uint32_t sport)
{
    return n > 1 ? sd_ecmp_hash(src, dst, sport, SD_ROCE_DPORT, sim->switch_seed[sw]) % n : 0;
}

/* A prefetch hint that the compiler keeps: gcc 12 at -O2 drops __builtin_prefetch calls inside
 * small static inline helpers (checked with objdump -d | grep prefetch), so on x86-64 it is an
 * asm statement (prefetcht0 never faults, whatever the address). */
#if defined(__x86_64__) || defined(__i386__)
#define SD_PREFETCH(p) __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)(p)))
#else
#define SD_PREFETCH(p) __builtin_prefetch(p)
#endif

/* The switch index (fib row, mmu) of a switch node. */
static inline uint32_t switch_index(const sd_sim *sim, uint32_t node)
{
    return sim->nodes[node].index;
}

/* The port a host sends packet p from: the local QP's (a data packet's sender, an ACK's or
 * CNP's receiver QP: the peer of the packet's destination QP), or the host's only port. */
static inline uint32_t host_tx_port(const sd_sim *sim, uint32_t host, const sd_packet *pk)
{
    if (sim->nodes[host].num_ports == 1 || pk->dqp >= sim->num_qps)
        return sim->hosts[host].port;
    const sd_qp *q = &sim->qps[sim->qps[pk->dqp].peer_qp];
    return q->host == host ? q->port : sim->hosts[host].port;
}

static inline int64_t ser_ps(uint64_t bytes, uint64_t rate_bps)
{
    /* bytes*8 bits at rate_bps, in ps, rounded up: ceil(bytes * 8e12 / rate); 64-bit
     * arithmetic suffices for anything up to 2 MB (every packet). The divisor is never
     * unchecked: port rates are >= SD_MIN_RATE_BPS from sd_add_links, pacing rates from
     * cc_event (which refuses anything lower), so a frame (<= 9212 B) takes < 74 ms. */
    if (bytes < (1u << 21)) {
        uint64_t num = bytes * 8000000000000ull;
        return (int64_t)((num + rate_bps - 1) / rate_bps);
    }
    unsigned __int128 num = (unsigned __int128)bytes * 8u * 1000000000000ull;
    return (int64_t)((num + rate_bps - 1) / rate_bps);
}

static inline int32_t psn_diff(uint32_t a, uint32_t b)
{
    /* signed distance a - b in 24-bit modular arithmetic */
    return ((int32_t)((a - b) << 8)) >> 8;
}

#endif
