/* pcap_scan.c: classic pcap records to RoCEv2 records, for dataplane/pcap.py read_pcap.
 *
 * The record rules are libpcap's (sf-pcap.c): a captured length above the snaplen loses the
 * record boundaries (the scan stops), a captured length above the original length is skipped.
 * The frame rules are those of the reference reader in Python (tests/test_pcap_scan.py keeps it
 * and compares record for record): Ethernet with any stack of 802.1Q / 802.1ad tags, IPv4 (any
 * IHL) or IPv6, UDP to 4791, BTH and the extension headers its opcode carries (IBTA Vol. 1
 * §9.2-9.3: RETH, AETH, ImmDt; Annex A16: the CNP's 16 reserved bytes), and the ICRC of Annex
 * A17 computed from the IP header on. Every byte read is checked against the record's captured
 * length (which is checked against the buffer): damaged input gives counted skips or a stop. */
#include <string.h>

#include "sim.h"

#define PCAP_REC_HDR 16u
#define MAX_SPAN_NS (INT64_MAX / 1000)       /* a time relative to the first must fit int64 ps */

/* a record while it is parsed (written out packed by put_rec) */
typedef struct {
    int64_t t_ns;
    uint64_t reth_va;
    uint32_t frame_len, caplen, dqp, psn, reth_rkey, reth_len, msn, imm, payload_len, icrc, record;
    uint16_t sport, dport, pkey;
    uint8_t ip_version, dscp, ecn, ttl, opcode, se, migreq, padcnt, tver, fecn, becn, ackreq, syndrome, icrc_ok;
    uint8_t src[16], dst[16];
} scan_rec;

static inline uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static inline uint32_t rd24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static inline uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static inline uint32_t rd32le(const uint8_t *p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }

static void skip(sd_pcap_scan_state *st, uint32_t reason)
{
    if (st->skipped[reason]++ == 0)
        st->first_skip[reason] = ++st->skip_kinds_seen;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SD_HAVE_PCLMUL 1
/* CRC-32 (IEEE 802.3, reflected) of len bytes (len >= 64, a multiple of 16) by carry-less
 * multiplication: fold 4 x 128 bits at a time, then 1 x 128, then reduce to 32 bits (Barrett).
 * Method and constants: Gopal et al., "Fast CRC Computation for Generic Polynomials Using
 * PCLMULQDQ Instruction" (Intel, 2009); the running CRC c as crc32_update takes it. */
__attribute__((target("pclmul,sse4.1")))
static uint32_t crc_fold_pclmul(uint32_t c, const uint8_t *p, size_t len)
{
    const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL);   /* x^(512+32), x^(512-32) mod P */
    const __m128i k3k4 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);   /* x^(128+32), x^(128-32) mod P */
    const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124LL);                 /* x^64 mod P */
    const __m128i poly = _mm_set_epi64x(0x1f7011641LL, 0x1db710641LL);   /* mu', P' (bit-reflected) */
    const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
    __m128i x1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi32_si128((int)c));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 32));
    __m128i x4 = _mm_loadu_si128((const __m128i *)(p + 48));
    p += 64;
    len -= 64;
#define FOLD(x, k, next) _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next)
    for (; len >= 64; p += 64, len -= 64) {
        x1 = FOLD(x1, k1k2, _mm_loadu_si128((const __m128i *)p));
        x2 = FOLD(x2, k1k2, _mm_loadu_si128((const __m128i *)(p + 16)));
        x3 = FOLD(x3, k1k2, _mm_loadu_si128((const __m128i *)(p + 32)));
        x4 = FOLD(x4, k1k2, _mm_loadu_si128((const __m128i *)(p + 48)));
    }
    x1 = FOLD(x1, k3k4, x2);
    x1 = FOLD(x1, k3k4, x3);
    x1 = FOLD(x1, k3k4, x4);
    for (; len >= 16; p += 16, len -= 16)
        x1 = FOLD(x1, k3k4, _mm_loadu_si128((const __m128i *)p));
#undef FOLD
    /* 128 -> 64 bits (and 32 zero bits appended) */
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), _mm_clmulepi64_si128(x1, k3k4, 0x10));
    /* 64 -> 32 */
    x2 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k5, 0x00);
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 4), x2);
    /* Barrett reduction */
    x2 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly, 0x10);
    x2 = _mm_clmulepi64_si128(_mm_and_si128(x2, mask32), poly, 0x00);
    x1 = _mm_xor_si128(x1, x2);
    return (uint32_t)_mm_extract_epi32(x1, 1);
}
#endif

/* the running CRC over n bytes: carry-less multiplication where the CPU has it (x86-64 with
 * PCLMULQDQ, about 15x the table's speed), the slicing-by-8 table of wire.c for the rest */
static uint32_t crc_run(uint32_t c, const uint8_t *p, size_t n)
{
#ifdef SD_HAVE_PCLMUL
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    }
    if (n >= 64 && have) {
        size_t m = n & ~(size_t)15;
        c = crc_fold_pclmul(c, p, m);
        p += m;
        n -= m;
    }
#endif
    return crc32_update(c, p, n);
}

/* ICRC (Annex A17) of the packet at ip (IP header to ICRC, len bytes without the ICRC), iphdr
 * the IP header's length (40 for IPv6); the caller guarantees len >= iphdr + 8 + 12. */
static uint32_t icrc_at(const uint8_t *ip, uint64_t len, uint32_t iphdr, int v6)
{
    uint8_t hdr[60 + 8 + 12];
    uint32_t h = iphdr + 8 + 12;
    memcpy(hdr, ip, h);
    if (v6) {
        hdr[0] |= 0x0F;
        hdr[1] = hdr[2] = hdr[3] = 0xFF;
        hdr[7] = 0xFF;
    } else {
        hdr[1] = 0xFF;
        hdr[8] = 0xFF;
        hdr[10] = hdr[11] = 0xFF;
    }
    hdr[iphdr + 6] = hdr[iphdr + 7] = 0xFF;
    hdr[iphdr + 8 + 4] = 0xFF;
    static const uint8_t ones[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    uint32_t c = crc32_update(0xFFFFFFFFu, ones, 8);
    c = crc32_update(c, hdr, h);
    c = crc_run(c, ip + h, (size_t)(len - h));
    return ~c;
}

static int is_vlan_tpid(uint32_t t) { return t == 0x8100 || t == 0x88A8 || t == 0x9100; }

/* Parse one frame of caplen captured bytes (orig on the wire); 1 = a record in *r, 0 = skipped. */
static int parse_frame(const uint8_t *f, uint64_t caplen, uint64_t orig, sd_pcap_scan_state *st, scan_rec *r)
{
    if (caplen < 14) {
        skip(st, SD_PCAP_TRUNCATED_FRAME);
        return 0;
    }
    uint64_t l3 = 14;
    uint32_t eth = rd16(f + 12);
    while (is_vlan_tpid(eth)) {
        if (caplen < l3 + 4) {
            skip(st, SD_PCAP_TRUNCATED_FRAME);
            return 0;
        }
        eth = rd16(f + l3 + 2);
        l3 += 4;
    }
    uint64_t l4, ip_end;
    uint32_t tos, iphdr;
    memset(r, 0, sizeof *r);
    if (eth == 0x0800) {
        if (caplen < l3 + 20) {
            skip(st, SD_PCAP_TRUNCATED_FRAME);
            return 0;
        }
        uint32_t vihl = f[l3], total = rd16(f + l3 + 2);
        iphdr = (vihl & 0x0F) * 4;
        tos = f[l3 + 1];
        if (vihl >> 4 != 4 || iphdr < 20 || total < iphdr + 8 || l3 + total > orig) {
            skip(st, SD_PCAP_BAD_IP_HEADER);
            return 0;
        }
        if (f[l3 + 9] != 17) {
            skip(st, SD_PCAP_NOT_UDP);
            return 0;
        }
        r->ip_version = 4;
        r->ttl = f[l3 + 8];
        memcpy(r->src, f + l3 + 12, 4);
        memcpy(r->dst, f + l3 + 16, 4);
        l4 = l3 + iphdr;
        ip_end = l3 + total;
    } else if (eth == 0x86DD) {
        if (caplen < l3 + 40) {
            skip(st, SD_PCAP_TRUNCATED_FRAME);
            return 0;
        }
        uint32_t w0 = rd32(f + l3), plen = rd16(f + l3 + 4);
        if (w0 >> 28 != 6 || l3 + 40 + plen > orig) {
            skip(st, SD_PCAP_BAD_IP_HEADER);
            return 0;
        }
        if (f[l3 + 6] != 17) {
            skip(st, SD_PCAP_NOT_UDP);
            return 0;
        }
        r->ip_version = 6;
        tos = (w0 >> 20) & 0xFF;
        r->ttl = f[l3 + 7];
        memcpy(r->src, f + l3 + 8, 16);
        memcpy(r->dst, f + l3 + 24, 16);
        iphdr = 40;
        l4 = l3 + 40;
        ip_end = l4 + plen;
    } else {
        skip(st, SD_PCAP_NOT_IP);
        return 0;
    }
    if (caplen < l4 + 8) {
        skip(st, SD_PCAP_TRUNCATED_FRAME);
        return 0;
    }
    uint32_t sport = rd16(f + l4), dport = rd16(f + l4 + 2), ulen = rd16(f + l4 + 4);
    if (dport != SD_ROCE_DPORT) {
        skip(st, SD_PCAP_NOT_ROCEV2);
        return 0;
    }
    if (ulen < 8 + 12 + 4 || l4 + ulen > ip_end) {
        skip(st, SD_PCAP_BAD_UDP_LENGTH);
        return 0;
    }
    uint64_t bth = l4 + 8;
    if (caplen < bth + 12) {
        skip(st, SD_PCAP_SNAPLEN_BEFORE_BTH);
        return 0;
    }
    const uint8_t *b = f + bth;
    uint32_t op = b[0], b1 = b[1], b4 = b[4];
    uint64_t ext = bth + 12;
    if (op == 6 || op == 10 || op == 11 || op == 12) {          /* RETH: WRITE First/Only(+Imm), READ Request */
        if (caplen >= ext + 16) {
            r->reth_va = (uint64_t)rd32(f + ext) << 32 | rd32(f + ext + 4);
            r->reth_rkey = rd32(f + ext + 8);
            r->reth_len = rd32(f + ext + 12);
        }
        ext += 16;
    }
    if (op == 13 || op == 15 || op == 16 || op == 17 || op == 18) {   /* AETH: READ Response First/Last/Only, ACK, atomic ACK */
        if (caplen >= ext + 4) {
            r->syndrome = f[ext];
            r->msn = rd24(f + ext + 1);
        }
        ext += 4;
    }
    if (op == 3 || op == 5 || op == 9 || op == 11) {            /* ImmDt: SEND/WRITE Last/Only with Immediate */
        if (caplen >= ext + 4)
            r->imm = rd32(f + ext);
        ext += 4;
    }
    if (op == 0x81)                                             /* CNP: 16 reserved bytes */
        ext += 16;
    uint32_t pad = (b1 >> 4) & 3;
    if (l4 + ulen < 4 + ext + pad) {
        skip(st, SD_PCAP_BAD_UDP_LENGTH);
        return 0;
    }
    uint64_t icrc_end = l4 + ulen;
    r->frame_len = (uint32_t)orig;
    r->caplen = (uint32_t)caplen;
    r->dscp = (uint8_t)(tos >> 2);
    r->ecn = (uint8_t)(tos & 3);
    r->sport = (uint16_t)sport;
    r->dport = (uint16_t)dport;
    r->opcode = (uint8_t)op;
    r->se = (uint8_t)(b1 >> 7);
    r->migreq = (uint8_t)((b1 >> 6) & 1);
    r->padcnt = (uint8_t)pad;
    r->tver = (uint8_t)(b1 & 0x0F);
    r->pkey = (uint16_t)rd16(b + 2);
    r->fecn = (uint8_t)(b4 >> 7);
    r->becn = (uint8_t)((b4 >> 6) & 1);
    r->dqp = rd24(b + 5);
    r->ackreq = (uint8_t)(b[8] >> 7);
    r->psn = rd24(b + 9);
    r->payload_len = (uint32_t)(icrc_end - 4 - ext - pad);
    if (caplen >= icrc_end && orig >= icrc_end) {
        r->icrc = rd32le(f + icrc_end - 4);
        r->icrc_ok = icrc_at(f + l3, icrc_end - 4 - l3, iphdr, eth == 0x86DD) == r->icrc;
    } else {
        r->icrc = 0;
        r->icrc_ok = 0xFF;
    }
    return 1;
}

/* the record in RECORD_DTYPE's packed layout (native byte order) */
static void put_rec(uint8_t *o, const scan_rec *r)
{
#define PUT(field, at) memcpy(o + (at), &r->field, sizeof r->field)
    PUT(t_ns, SD_PCAP_AT_T_NS); PUT(frame_len, SD_PCAP_AT_FRAME_LEN); PUT(caplen, SD_PCAP_AT_CAPLEN);
    PUT(ip_version, SD_PCAP_AT_IP_VERSION); PUT(src, SD_PCAP_AT_SRC); PUT(dst, SD_PCAP_AT_DST);
    PUT(dscp, SD_PCAP_AT_DSCP); PUT(ecn, SD_PCAP_AT_ECN); PUT(ttl, SD_PCAP_AT_TTL);
    PUT(sport, SD_PCAP_AT_SPORT); PUT(dport, SD_PCAP_AT_DPORT); PUT(opcode, SD_PCAP_AT_OPCODE);
    PUT(se, SD_PCAP_AT_SE); PUT(migreq, SD_PCAP_AT_MIGREQ); PUT(padcnt, SD_PCAP_AT_PADCNT);
    PUT(tver, SD_PCAP_AT_TVER); PUT(pkey, SD_PCAP_AT_PKEY); PUT(fecn, SD_PCAP_AT_FECN);
    PUT(becn, SD_PCAP_AT_BECN); PUT(dqp, SD_PCAP_AT_DQP); PUT(ackreq, SD_PCAP_AT_ACKREQ);
    PUT(psn, SD_PCAP_AT_PSN); PUT(reth_va, SD_PCAP_AT_RETH_VA); PUT(reth_rkey, SD_PCAP_AT_RETH_RKEY);
    PUT(reth_len, SD_PCAP_AT_RETH_LEN); PUT(syndrome, SD_PCAP_AT_SYNDROME); PUT(msn, SD_PCAP_AT_MSN);
    PUT(imm, SD_PCAP_AT_IMM); PUT(payload_len, SD_PCAP_AT_PAYLOAD_LEN); PUT(icrc, SD_PCAP_AT_ICRC);
    PUT(icrc_ok, SD_PCAP_AT_ICRC_OK); PUT(record, SD_PCAP_AT_RECORD);
#undef PUT
}

uint64_t sd_pcap_scan(const uint8_t *data, uint64_t len, sd_pcap_scan_state *st, uint8_t *out, uint64_t cap)
{
    uint64_t n_out = 0;
    if (!st)
        return 0;
    if (!data && st->offset < len)
        return 0;                                      /* no buffer: the caller sees stop RUNNING */
    if (st->stop != SD_PCAP_RUNNING && st->stop != SD_PCAP_OUT_FULL)
        return 0;                                      /* already ended */
    st->stop = SD_PCAP_RUNNING;
    const uint64_t frac_max = st->nanosecond ? 1000000000u : 1000000u;
    uint64_t off = st->offset;
    while (off < len) {
        if (n_out >= cap || !out) {
            st->stop = SD_PCAP_OUT_FULL;
            break;
        }
        if (len - off < PCAP_REC_HDR) {
            skip(st, SD_PCAP_TRUNCATED_RECORD);
            st->stop = SD_PCAP_STOP_SHORT_HEADER;
            st->stop_incl = 0;
            break;
        }
        const uint8_t *h = data + off;
        uint32_t sec, frac, incl, orig;
        if (st->big_endian) {
            sec = rd32(h), frac = rd32(h + 4), incl = rd32(h + 8), orig = rd32(h + 12);
        } else {
            sec = rd32le(h), frac = rd32le(h + 4), incl = rd32le(h + 8), orig = rd32le(h + 12);
        }
        if (incl > st->limit) {
            skip(st, SD_PCAP_BAD_RECORD_LENGTH);
            st->stop = SD_PCAP_STOP_SNAPLEN;
            st->stop_incl = incl;
            break;
        }
        if (len - off - PCAP_REC_HDR < incl) {
            skip(st, SD_PCAP_TRUNCATED_RECORD);
            st->stop = SD_PCAP_STOP_TRUNCATED;
            st->stop_incl = incl;
            break;
        }
        const uint8_t *frame = h + PCAP_REC_HDR;
        uint32_t index = st->index;
        off += PCAP_REC_HDR + (uint64_t)incl;
        st->index++;
        if (incl > orig) {
            skip(st, SD_PCAP_INCL_EXCEEDS_ORIG);
            continue;
        }
        if (frac >= frac_max) {
            skip(st, SD_PCAP_BAD_TIMESTAMP);
            continue;
        }
        int64_t t_ns = (int64_t)sec * 1000000000 + (int64_t)frac * (st->nanosecond ? 1 : 1000);
        if (!st->has_first) {
            st->t_first = t_ns;
            st->has_first = 1;
        } else {
            int64_t d = t_ns - st->t_first;          /* both in [0, 2^32 s): no overflow */
            if (d > MAX_SPAN_NS || d < -MAX_SPAN_NS) {
                skip(st, SD_PCAP_TIMESTAMP_OUT_OF_RANGE);
                continue;
            }
        }
        scan_rec r;
        if (parse_frame(frame, incl, orig, st, &r)) {
            r.t_ns = t_ns;
            r.record = index;
            put_rec(out + n_out * SD_PCAP_REC_BYTES, &r);
            n_out++;
        }
    }
    if (st->stop == SD_PCAP_RUNNING) {
        st->stop = SD_PCAP_END;
    } else if (st->stop != SD_PCAP_OUT_FULL) {
        st->stop_offset = off;
        st->stop_index = st->index;
    }
    st->offset = off;
    return n_out;
}
