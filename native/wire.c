/* wire.c: RoCEv2 bytes and pcap capture.
 *
 * The simulator moves header *fields*; this file turns a packet into the exact frame a RoCEv2
 * NIC would put on the wire (IBTA InfiniBand Architecture Specification Vol. 1, §9.2-9.3 and
 * Annex A17): Ethernet II, IPv4 (DF,
 * checksum) or IPv6, UDP to 4791 with checksum 0 and the packet's entropy as source port, BTH,
 * RETH on WRITE First/Only (with or without immediate) and on a READ request, ImmDt (the message's
 * index) on the "with Immediate" opcodes, AETH on ACK/NAK and READ response First/Last/Only, 16
 * reserved bytes on a CNP, payload padded to 4
 * bytes (BTH PadCnt), and the ICRC of IBTA Annex A17. The ICRC is computed from the fields as
 * they are when the frame is serialized, so every change to a covered field (a new UDP source
 * port, say) is reflected; TOS/TTL/checksums/FECN/BECN are masked, as the annex requires.
 *
 * Captures are written by the data plane itself (buffered stdio), one pcap file per session,
 * with nanosecond timestamps; a port's cap_tx/cap_rx masks say which sessions record it, so an
 * uncaptured port costs one byte test per packet. */
#include <stdio.h>
#include <string.h>

#include "sim.h"

#define PCAP_MAGIC_NS 0xA1B23C4Du
#define LINKTYPE_ETHERNET 1u
#define VA_BASE_SHIFT 40u

/* ---------------------------------------------------------------- CRC-32 (IEEE 802.3) */
static uint32_t crc_table[8][256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFFu];
    crc_ready = 1;
}

/* running CRC (no pre/post inversion here), slicing-by-8 */
static uint32_t crc_update(uint32_t c, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^ crc_table[5][(lo >> 16) & 0xFF] ^
            crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
            crc_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c;
}

/* the same running CRC for the pcap reader (pcap_scan.c) */
uint32_t crc32_update(uint32_t c, const uint8_t *p, size_t n)
{
    if (!crc_ready)
        crc_init();
    return crc_update(c, p, n);
}

uint32_t sd_icrc(const uint8_t *frame, uint32_t len)
{
    /* IBTA Annex A17: CRC-32 over 8 bytes of 0xFF (the LRH stand-in), then the IP header with
     * the variant fields set to ones, the UDP header with the checksum set to ones, the BTH
     * with byte 4 (FECN, BECN, resv6) set to ones, then everything up to the ICRC itself. */
    if (!crc_ready)
        crc_init();
    if (len < 14 + 20 + 8 + 12 + 4)
        return 0;
    uint8_t hdr[14 + 40 + 8 + 12];
    uint32_t ethertype = (uint32_t)frame[12] << 8 | frame[13];
    uint32_t ip = ethertype == 0x86DD ? 40u : 20u, h = ip + 8 + 12;
    if (14 + h + 4 > len)
        return 0;
    memcpy(hdr, frame + 14, h);
    if (ip == 20) {
        hdr[1] = 0xFF;                        /* TOS */
        hdr[8] = 0xFF;                        /* TTL */
        hdr[10] = hdr[11] = 0xFF;             /* header checksum */
    } else {
        hdr[0] |= 0x0F;                       /* traffic class (low 4 bits of byte 0 ...) */
        hdr[1] = hdr[2] = hdr[3] = 0xFF;      /* ... traffic class and flow label */
        hdr[7] = 0xFF;                        /* hop limit */
    }
    hdr[ip + 6] = hdr[ip + 7] = 0xFF;         /* UDP checksum */
    hdr[ip + 8 + 4] = 0xFF;                   /* BTH FECN/BECN/resv6 */
    static const uint8_t ones[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    uint32_t c = crc_update(0xFFFFFFFFu, ones, 8);
    c = crc_update(c, hdr, h);
    c = crc_update(c, frame + 14 + h, len - 14 - h - 4);
    return ~c;
}

/* ---------------------------------------------------------------- encoding */
static uint8_t *put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
    return p + 3;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

/* MAC and IP addresses are per address (sd_set_addresses: a host interface group; address h =
 * host h by default): 02:00:00:xx:xx:xx and 10.x.x.x / fd00::x numbered from 1. */
static uint8_t *put_mac(uint8_t *p, uint32_t addr)
{
    uint32_t a = addr + 1;
    p[0] = 0x02;
    p[1] = p[2] = 0;
    p[3] = (uint8_t)(a >> 16);
    p[4] = (uint8_t)(a >> 8);
    p[5] = (uint8_t)a;
    return p + 6;
}

static uint32_t ipv4_of(uint32_t addr)
{
    return 0x0A000000u + addr + 1;
}

static uint8_t *put_ipv6(uint8_t *p, uint32_t host)
{
    memset(p, 0, 16);
    p[0] = 0xFD;
    put32(p + 12, host + 1);
    return p + 16;
}

/* RETH of a WRITE or READ: the remote buffer is laid out per QP (the responder's: a WRITE's
 * destination QP, a READ response's source), messages back to back; a READ request asks for its
 * length (carried in msn) from its offset on. */
static void reth_of(const sd_sim *sim, const sd_packet *pk, uint64_t *va, uint32_t *rkey, uint32_t *dlen,
                    uint64_t *offset)
{
    *va = 0;
    *rkey = 0x1000u + pk->dqp;              /* one memory region per QP */
    *dlen = pk->opcode == SD_OP_READ_REQ ? pk->msn : pk->payload;
    *offset = 0;
    if (pk->msg >= sim->num_msgs)
        return;
    const sd_msg *m = &sim->msgs[pk->msg];
    const sd_qp *q = &sim->qps[m->qp];
    uint64_t mtu = q->mtu_payload;
    uint32_t region = pk->dqp;
    if (op_is_read_resp(pk->opcode) && pk->dqp < sim->num_qps)
        region = sim->qps[pk->dqp].peer_qp;  /* the data comes from the responder's memory */
    *va = ((uint64_t)(region + 1) << VA_BASE_SHIFT) | ((m->start_seq * mtu) & ((1ull << VA_BASE_SHIFT) - 1));
    *rkey = 0x1000u + region;
    *dlen = (uint32_t)(m->bytes > UINT32_MAX ? UINT32_MAX : m->bytes);
    int32_t idx = psn_diff(pk->psn, (uint32_t)((q->isn + m->start_seq) & SD_PSN_MASK));
    *offset = idx > 0 ? (uint64_t)idx * mtu : 0;
    if (pk->opcode == SD_OP_READ_REQ) {
        *va += *offset;                        /* a re-request asks from where the responses stopped */
        *offset = 0;
        *dlen = pk->msn;
    }
}

static uint32_t frame_len(const sd_sim *sim, const sd_packet *pk)
{
    return sd_wire_bytes((sd_sim *)sim, pk->opcode, pk->payload) - sim->cfg.phy_overhead - SD_ETH_FCS;
}

/* An IPv4 header (no options, DF, identification 0, UDP) with its checksum. */
static uint8_t *put_ipv4(uint8_t *p, uint32_t tos, uint32_t total_len, uint8_t ttl, uint32_t src, uint32_t dst)
{
    uint8_t *iph = p;
    *p++ = 0x45;
    *p++ = (uint8_t)tos;
    p = put16(p, total_len);
    p = put16(p, 0);                           /* identification */
    p = put16(p, 0x4000);                      /* DF */
    *p++ = ttl;
    *p++ = 17;                                 /* UDP */
    p = put16(p, 0);                           /* checksum, below */
    p = put32(p, src);
    p = put32(p, dst);
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2)
        sum += (uint32_t)iph[i] << 8 | iph[i + 1];
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    put16(iph + 10, ~sum & 0xFFFF);
    return p;
}

/* The 50 outer bytes of a VXLAN frame of total length len (inner frame already at f + 50). */
static void put_vxlan(const sd_sim *sim, uint8_t *f, const sd_packet *pk, uint32_t meta, uint32_t len)
{
    uint32_t dscp = pkt_dscp(sim, pk);
    if (meta & SD_VS_META_DSCP_SET)
        dscp = meta >> SD_VS_META_DSCP_SHIFT;
    uint32_t ip_total = len - SD_ETH_HDR;
    uint8_t *p = put_mac(f, pk->dst);
    p = put_mac(p, pk->src);
    p = put16(p, 0x0800);
    p = put_ipv4(p, (dscp << 2) | (pk->ecn & 3u), ip_total, pk->ttl, ipv4_of(pk->src), ipv4_of(pk->dst));
    p = put16(p, pk->sport);                   /* the inner flow's entropy, for the fabric's ECMP */
    p = put16(p, SD_VXLAN_PORT);
    p = put16(p, ip_total - SD_IPV4_HDR);
    p = put16(p, 0);                           /* RFC 7348: UDP checksum SHOULD be 0 */
    p = put32(p, 0x08000000u);                 /* flags: I (valid VNI), reserved */
    put32(p, (meta & SD_VS_META_VNI) << 8);    /* VNI, reserved byte */
}

/* The MAC and IPv4 address of the function a QP sits on (vswitch.c): VF g has 06:00:(g+1) and its
 * tenant address; the PF uses its host's. */
static uint8_t *put_fn_mac(uint8_t *p, const sd_sim *sim, uint32_t qp, uint32_t host)
{
    uint32_t vf = qp < sim->vsw.qp_fn_cap ? sim->vsw.qp_fn[qp] : SD_NONE;
    if (vf == SD_NONE)
        return put_mac(p, host);
    p[0] = 0x06;
    p[1] = 0x00;
    return put32(p + 2, vf + 1);
}

static uint32_t fn_ipv4(const sd_sim *sim, uint32_t qp, uint32_t host)
{
    uint32_t vf = qp < sim->vsw.qp_fn_cap ? sim->vsw.qp_fn[qp] : SD_NONE;
    return vf == SD_NONE ? ipv4_of(host) : sim->vsw.vfs[vf].ip;
}

int sd_encode(sd_sim *sim, const sd_packet *pk, uint8_t *buf, uint32_t cap, uint32_t snaplen)
{
    return sd_encode_meta(sim, pk, 0, buf, cap, snaplen);
}

/* With SD_VS_META_ENCAP the frame is VXLAN (RFC 7348): outer Ethernet/IPv4 between the two DPUs
 * (DSCP and ECN of the packet as it travels the fabric, its TTL, DF), outer UDP from the packet's
 * entropy to 4789 with checksum 0, the 8-byte VXLAN header (I flag, VNI), then the inner RoCEv2
 * frame between the two functions (their MACs and addresses, TTL 64, the ECN its sender set),
 * whose ICRC covers the inner headers only. */
int sd_encode_meta(sd_sim *sim, const sd_packet *pk, uint32_t meta, uint8_t *buf, uint32_t cap, uint32_t snaplen)
{
    /* Build the whole frame in a local buffer: the ICRC covers all of it; copy what fits. */
    static uint8_t f[9216 + 256];
    if (pk->payload > 9216)
        return sd_fail(sim, SD_EINVAL, "encode: payload %u exceeds 9216 bytes", pk->payload);
    int encap = (meta & SD_VS_META_ENCAP) != 0;
    if (encap && sim->cfg.ipv6)
        return sd_fail(sim, SD_EINVAL, "encode: VXLAN frames are modelled over IPv4 only");
    uint32_t outer = encap ? SD_VXLAN_OVERHEAD : 0;
    uint32_t len = frame_len(sim, pk) + outer;
    int v6 = sim->cfg.ipv6 != 0;
    uint32_t op = pk->opcode;
    uint32_t dscp = pkt_dscp(sim, pk);
    if (meta & SD_VS_META_DSCP_SET)
        dscp = meta >> SD_VS_META_DSCP_SHIFT;
    /* inner ECN: what the sender set (ECT(0) on data and CNPs); the fabric marks the outer header */
    uint32_t ecn = encap ? (op == SD_OP_ACK ? 0u : SD_ECN_ECT0) : pk->ecn & 3u;
    uint32_t tos = (dscp << 2) | ecn;
    uint32_t pad = (4u - (pk->payload & 3u)) & 3u;
    uint32_t ip_len = v6 ? SD_IPV6_HDR : SD_IPV4_HDR;
    uint32_t udp_len = len - outer - SD_ETH_HDR - ip_len;
    uint8_t ttl = encap ? (uint8_t)SD_TTL : pk->ttl;
    uint32_t src_qp = pk->dqp < sim->num_qps ? sim->qps[pk->dqp].peer_qp : SD_NONE;
    uint32_t src_ip = ipv4_of(pk->src), dst_ip = ipv4_of(pk->dst);
    uint8_t *p = f + outer;

    if (src_qp != SD_NONE && !v6) {        /* the frame the functions exchange (hosts' for the PF) */
        uint32_t dst_host = sim->qps[pk->dqp].host, src_host = sim->qps[src_qp].host;
        p = put_fn_mac(p, sim, pk->dqp, encap ? dst_host : pk->dst);
        p = put_fn_mac(p, sim, src_qp, encap ? src_host : pk->src);
        src_ip = fn_ipv4(sim, src_qp, encap ? src_host : pk->src);
        dst_ip = fn_ipv4(sim, pk->dqp, encap ? dst_host : pk->dst);
    } else {
        p = put_mac(p, pk->dst);
        p = put_mac(p, pk->src);
    }
    p = put16(p, v6 ? 0x86DD : 0x0800);
    if (!v6) {
        p = put_ipv4(p, tos, udp_len + 20, ttl, src_ip, dst_ip);
    } else {
        p = put32(p, 0x60000000u | tos << 20);  /* version 6, traffic class, flow label 0 */
        p = put16(p, udp_len);
        *p++ = 17;
        *p++ = ttl;
        p = put_ipv6(p, pk->src);
        p = put_ipv6(p, pk->dst);
    }
    p = put16(p, pk->sport);
    p = put16(p, SD_ROCE_DPORT);
    p = put16(p, udp_len);
    p = put16(p, 0);                           /* UDP checksum: 0, as RoCEv2 NICs send */

    /* BTH */
    *p++ = (uint8_t)op;
    *p++ = (uint8_t)(pad << 4);                /* SE 0, M 0, PadCnt, TVer 0 */
    p = put16(p, 0xFFFF);                      /* default P_Key */
    *p++ = (uint8_t)(pk->becn ? 0x40 : 0x00);  /* FECN 0, BECN */
    p = put24(p, (pk->dqp + SD_QPN_BASE) & SD_PSN_MASK);
    *p++ = (uint8_t)((pk->flags & SD_PKT_ACKREQ) ? 0x80 : 0x00);
    p = put24(p, pk->psn & SD_PSN_MASK);

    uint64_t va = 0, offset = 0;
    if (op != SD_OP_ACK && op != SD_OP_CNP) {
        uint32_t rkey, dlen;
        reth_of(sim, pk, &va, &rkey, &dlen, &offset);
        if (op_has_reth(op)) {
            p = put32(p, (uint32_t)(va >> 32));
            p = put32(p, (uint32_t)va);
            p = put32(p, rkey);
            p = put32(p, dlen);
        }
    }
    if (op_has_imm(op))
        p = put32(p, pk->msg);                 /* immediate data: the message's index */
    const sd_msg *am = pk->msg < sim->num_msgs ? &sim->msgs[pk->msg] : NULL;
    if (op == SD_OP_CMP_SWAP || op == SD_OP_FETCH_ADD) {
        /* AtomicETH: the responder region's first word (every ATOMIC of a QP pair targets it) */
        uint64_t va_word = (uint64_t)(pk->dqp + 1) << VA_BASE_SHIFT;
        uint64_t swap = am ? am->atomic_value : 0, cmp = am && op == SD_OP_CMP_SWAP ? am->atomic_compare : 0;
        p = put32(p, (uint32_t)(va_word >> 32));
        p = put32(p, (uint32_t)va_word);
        p = put32(p, 0x1000u + pk->dqp);
        p = put32(p, (uint32_t)(swap >> 32));
        p = put32(p, (uint32_t)swap);
        p = put32(p, (uint32_t)(cmp >> 32));
        p = put32(p, (uint32_t)cmp);
    }
    if (op_has_aeth(op)) {
        *p++ = pk->syndrome;
        p = put24(p, pk->msn & SD_PSN_MASK);
        if (op == SD_OP_ATOMIC_ACK) {          /* AtomicAckETH: the original remote data */
            uint64_t orig = am ? am->atomic_orig : 0;
            p = put32(p, (uint32_t)(orig >> 32));
            p = put32(p, (uint32_t)orig);
        }
    } else if (op == SD_OP_CNP) {
        memset(p, 0, SD_CNP_PAD);
        p += SD_CNP_PAD;
    }
    uint32_t hdr_len = (uint32_t)(p - f);
    if (hdr_len + pk->payload + pad + 4 != len)
        return sd_fail(sim, SD_EINVAL, "encode: %u header bytes for a %u-byte frame (opcode %u)", hdr_len, len, op);
    uint32_t n = len < snaplen ? len : snaplen;
    if (n > cap)
        n = cap;
    /* A truncated capture needs neither the payload past the cut nor the ICRC at the end. */
    uint32_t body = n < len ? (n > hdr_len ? n - hdr_len : 0) : pk->payload + pad;
    if (body > pk->payload + pad)
        body = pk->payload + pad;
    if (op != SD_OP_ACK && op != SD_OP_CNP) {
        uint32_t fill = body < pk->payload ? body : pk->payload;
        if (sim->cfg.payload_pattern == 1) {
            uint64_t a = va + offset;
            for (uint32_t i = 0; i < fill; i++)
                p[i] = (uint8_t)(a + i);
        } else {
            memset(p, 0, fill);
        }
        memset(p + fill, 0, body - fill);
    }
    if (encap)
        put_vxlan(sim, f, pk, meta, len);
    if (n == len) {
        uint32_t icrc = sd_icrc(f + outer, len - outer);   /* RoCEv2 frames are >= 60 bytes: no pad */
        f[len - 4] = (uint8_t)icrc;            /* least significant byte first */
        f[len - 3] = (uint8_t)(icrc >> 8);
        f[len - 2] = (uint8_t)(icrc >> 16);
        f[len - 1] = (uint8_t)(icrc >> 24);
    }
    memcpy(buf, f, n);
    return (int)len;
}

/* ---------------------------------------------------------------- pcap */
static int write_header(FILE *fp, uint32_t snaplen)
{
    /* magic, version 2.4 (two 16-bit halves), thiszone, sigfigs, snaplen, link type; host order */
    uint32_t h[6] = {PCAP_MAGIC_NS, 2u | (4u << 16), 0, 0, snaplen, LINKTYPE_ETHERNET};
    return fwrite(h, sizeof h, 1, fp) == 1;
}

static int write_record(sd_sim *sim, FILE *fp, const sd_packet *pk, int64_t t_ps, uint32_t snaplen,
                        uint64_t *bytes)
{
    uint8_t buf[9216 + 256];
    uint32_t meta = 0;
    if (sim->vsw.meta && pk >= sim->pkts && pk < sim->pkts + sim->cfg.pkt_pool)
        meta = sim->vsw.meta[pk - sim->pkts];
    int len = sd_encode_meta(sim, pk, meta, buf, sizeof buf, snaplen);
    if (len < 0)
        return 0;
    uint32_t incl = (uint32_t)len < snaplen ? (uint32_t)len : snaplen;
    uint64_t ns = (uint64_t)(t_ps < 0 ? 0 : t_ps) / 1000u;
    uint32_t rec[4] = {(uint32_t)(ns / 1000000000u), (uint32_t)(ns % 1000000000u), incl, (uint32_t)len};
    if (fwrite(rec, sizeof rec, 1, fp) != 1 || fwrite(buf, incl, 1, fp) != 1)
        return 0;
    *bytes += sizeof rec + incl;
    return 1;
}

int sd_capture_open(sd_sim *sim, const char *path, uint32_t snaplen, int64_t t_start_ps, int64_t t_end_ps,
                    uint64_t max_packets, uint32_t qp)
{
    if (snaplen < 14 || snaplen > 262144)
        return sd_fail(sim, SD_EINVAL, "capture: snaplen must be in [14, 262144] bytes, got %u", snaplen);
    if (t_end_ps <= t_start_ps)
        return sd_fail(sim, SD_EINVAL, "capture: the time window [%lld, %lld) ps is empty",
                       (long long)t_start_ps, (long long)t_end_ps);
    if (qp != SD_NONE && qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "capture: qp %u does not exist (%u QPs)", qp, sim->num_qps);
    uint32_t id = 0;
    while (id < SD_MAX_CAPTURES && sim->capture.session[id].fp)
        id++;
    if (id == SD_MAX_CAPTURES)
        return sd_fail(sim, SD_ENOMEM, "capture: at most %d sessions at once", SD_MAX_CAPTURES);
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return sd_fail(sim, SD_EINVAL, "capture: cannot open %s for writing", path);
    setvbuf(fp, NULL, _IOFBF, 1 << 20);
    if (!write_header(fp, snaplen)) {
        fclose(fp);
        return sd_fail(sim, SD_EINVAL, "capture: cannot write to %s", path);
    }
    sd_capture *c = &sim->capture.session[id];
    memset(c, 0, sizeof *c);
    c->fp = fp;
    c->snaplen = snaplen;
    c->t_start = t_start_ps;
    c->t_end = t_end_ps;
    c->max_packets = max_packets;
    c->qp_a = qp;
    c->qp_b = qp == SD_NONE ? SD_NONE : sim->qps[qp].peer_qp;
    c->bytes = 24;
    return (int)id;
}

int sd_capture_port(sd_sim *sim, uint32_t session, uint32_t port, uint32_t tx, uint32_t rx)
{
    if (session >= SD_MAX_CAPTURES || !sim->capture.session[session].fp)
        return sd_fail(sim, SD_EINVAL, "capture: session %u is not open", session);
    if (port >= sim->num_ports)
        return sd_fail(sim, SD_EINVAL, "capture: port %u does not exist (%u ports)", port, sim->num_ports);
    uint8_t bit = (uint8_t)(1u << session);
    sd_port *pt = &sim->ports[port];
    pt->cap_tx = (uint8_t)(tx ? pt->cap_tx | bit : pt->cap_tx & ~bit);
    pt->cap_rx = (uint8_t)(rx ? pt->cap_rx | bit : pt->cap_rx & ~bit);
    port_hooks_build(sim, port);
    return SD_OK;
}

int sd_capture_close(sd_sim *sim, uint32_t session)
{
    if (session >= SD_MAX_CAPTURES || !sim->capture.session[session].fp)
        return sd_fail(sim, SD_EINVAL, "capture: session %u is not open", session);
    uint8_t keep = (uint8_t)~(1u << session);
    for (uint32_t i = 0; i < sim->num_ports; i++) {
        sim->ports[i].cap_tx &= keep;
        sim->ports[i].cap_rx &= keep;
        port_hooks_build(sim, i);
    }
    sd_capture *c = &sim->capture.session[session];
    int ok = fclose(c->fp) == 0 && !c->write_error;
    c->fp = NULL;
    return ok ? SD_OK : sd_fail(sim, SD_EINVAL, "capture: writing session %u failed (disk full?)", session);
}

int sd_capture_stats(sd_sim *sim, uint32_t session, uint64_t *packets, uint64_t *bytes)
{
    if (session >= SD_MAX_CAPTURES)
        return sd_fail(sim, SD_EINVAL, "capture: no session %u", session);
    *packets = sim->capture.session[session].packets;
    *bytes = sim->capture.session[session].bytes;
    return SD_OK;
}

void capture_packet(sd_sim *sim, uint8_t mask, const sd_packet *pk)
{
    for (uint32_t s = 0; mask; s++, mask >>= 1) {
        if (!(mask & 1u))
            continue;
        sd_capture *c = &sim->capture.session[s];
        if (sim->now < c->t_start || sim->now >= c->t_end || c->write_error ||
            (c->max_packets && c->packets >= c->max_packets))
            continue;
        if (c->qp_a != SD_NONE && pk->dqp != c->qp_a && pk->dqp != c->qp_b)
            continue;
        if (write_record(sim, c->fp, pk, sim->now, c->snaplen, &c->bytes))
            c->packets++;
        else
            c->write_error = 1;
    }
}

int sd_write_pcap(sd_sim *sim, const char *path, const sd_packet *pkts, const int64_t *t_ps, uint32_t n,
                  uint32_t snaplen)
{
    if (snaplen < 14 || snaplen > 262144)
        return sd_fail(sim, SD_EINVAL, "write_pcap: snaplen must be in [14, 262144] bytes, got %u", snaplen);
    for (uint32_t i = 0; i < n; i++) {
        const sd_packet *pk = &pkts[i];
        if (pk->opcode > SD_OP_FETCH_ADD && pk->opcode != SD_OP_CNP)
            return sd_fail(sim, SD_EINVAL, "write_pcap: packet %u has opcode %u, not one softdpu emits", i, pk->opcode);
        if (pk->opcode <= SD_OP_WRITE_ONLY_IMM && pk->payload == 0)
            return sd_fail(sim, SD_EINVAL, "write_pcap: packet %u (opcode %u, a SEND or WRITE) carries no payload: "
                           "softdpu sends every message's bytes, at least one per packet", i, pk->opcode);
        if (pk->src >= sim->num_addrs || pk->dst >= sim->num_addrs)
            return sd_fail(sim, SD_EINVAL, "write_pcap: packet %u names address %u or %u (addresses are 0..%u)", i,
                           pk->src, pk->dst, sim->num_addrs - 1);
        if (pk->payload > 9216)
            return sd_fail(sim, SD_EINVAL, "write_pcap: packet %u payload %u exceeds 9216 bytes", i, pk->payload);
    }
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return sd_fail(sim, SD_EINVAL, "write_pcap: cannot open %s for writing", path);
    uint64_t bytes = 0;
    int ok = write_header(fp, snaplen);
    for (uint32_t i = 0; ok && i < n; i++)
        ok = write_record(sim, fp, &pkts[i], t_ps[i], snaplen, &bytes);
    ok = (fclose(fp) == 0) && ok;
    return ok ? SD_OK : sd_fail(sim, SD_EINVAL, "write_pcap: writing %s failed", path);
}

/* Port hooks (port.c): a port records what it sends and what its node receives through it for
 * the sessions in its cap_tx / cap_rx masks. */
static int capture_wants_tx(const sd_sim *sim, const sd_port *pt)
{
    (void)sim;
    return pt->cap_tx != 0;
}

static int capture_wants_rx(const sd_sim *sim, const sd_port *pt)
{
    (void)sim;
    return pt->cap_rx != 0;
}

static void capture_tx(sd_sim *sim, sd_port *pt, uint32_t prio, uint32_t p)
{
    (void)prio;
    capture_packet(sim, pt->cap_tx, &sim->pkts[p]);
}

static void capture_rx(sd_sim *sim, sd_port *pt, uint32_t prio, uint32_t p)
{
    (void)prio;
    capture_packet(sim, pt->cap_rx, &sim->pkts[p]);
}

const port_hook capture_hook_tx = {"capture_tx", PORT_EV_DEQUEUE, capture_wants_tx, capture_tx};
const port_hook capture_hook_rx = {"capture_rx", PORT_EV_RECEIVE, capture_wants_rx, capture_rx};

/* The capture module (sim.c's table): sessions live in the simulator struct (counted by the core
 * module); freeing the simulator closes those still open, as sd_capture_close would. */
void capture_free(sd_sim *sim)
{
    for (uint32_t s = 0; s < SD_MAX_CAPTURES; s++) {
        if (sim->capture.session[s].fp) {
            fclose(sim->capture.session[s].fp);
            sim->capture.session[s].fp = NULL;
        }
    }
}

uint64_t capture_memory_bytes(const sd_sim *sim)
{
    (void)sim;
    return 0;
}
