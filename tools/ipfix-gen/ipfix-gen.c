/*
 * ipfix-gen: an IPFIX (RFC 7011) load generator for benchmarking flow collectors.
 *
 * Sends about 30 flow records per ~1400-octet UDP datagram, IPv4 and IPv6 templates (mix set by
 * --v6-ratio), from one or many exporters (one UDP socket, hence one source port, each), at a target
 * rate or flat out, with sendmmsg() so the generator is not the bottleneck. Each exporter sends its
 * templates before its first data set and again every --template-refresh seconds.
 *
 * Record contents are a pure function of (--seed, flow index): a rerun sends the same flows, and the
 * (source address, source port) pair is unique per flow index (a bijection on 40 bits), so a collector
 * that aggregates on the 5-tuple still emits exactly one record per flow.
 *
 * At the end it prints one line of key=value pairs on stdout (see print_summary()).
 *
 * Build: cc -O2 -Wall -o ipfix-gen ipfix-gen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    IPFIX_VERSION = 10,
    MESSAGE_HEADER_LEN = 16,
    SET_HEADER_LEN = 4,
    TEMPLATE_SET_ID = 2,
    TEMPLATE_ID_V4 = 256,
    TEMPLATE_ID_V6 = 257,
    MAX_EXPORTERS = 10000,
    MAX_BURST = 256,
    MAX_DATAGRAM = 9000,
};

/* One template field: information element id and the length we encode it with. */
struct field { uint16_t id, length; };

/* packetDeltaCount is sent with reduced-size encoding (4 octets), as many routers do. */
static const struct field fields_v4[] = {
    {8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {6, 2}, {1, 8}, {2, 4}, {152, 8}, {153, 8}, {5, 1},
};
static const struct field fields_v6[] = {
    {27, 16}, {28, 16}, {7, 2}, {11, 2}, {4, 1}, {6, 2}, {1, 8}, {2, 4}, {152, 8}, {153, 8}, {5, 1},
};
#define FIELD_COUNT(a) (sizeof(a) / sizeof((a)[0]))
enum { RECORD_LEN_V4 = 44, RECORD_LEN_V6 = 68 };

struct options {
    const char *dest;
    const char *source;
    double rate;            /* flows per second; 0 = flat out */
    uint64_t flows;
    int exporters;
    double v6_ratio;
    uint64_t seed;
    int burst;              /* datagrams per sendmmsg() call and per exporter turn; 0 = automatic */
    int max_datagram;
    int records_per_datagram; /* 0 = as many as fit in max_datagram */
    double template_refresh;
    bool templates_known;
    uint32_t domain_base;
    int source_port_base;   /* 0 = kernel-chosen ports */
    int sndbuf;
    uint8_t src_net;        /* first octet of IPv4 source addresses: lets a counter tell two runs apart */
};

struct exporter {
    int fd;
    uint16_t port;
    uint32_t domain;
    uint32_t sequence;      /* data records sent so far, modulo 2^32 (RFC 7011 section 3.1) */
    int64_t last_template_ns;
};

struct totals {
    uint64_t flows, flows_v6, datagrams, template_datagrams, bytes;
    uint64_t sum_packets, sum_octets;
    uint64_t send_errors, unsent_flows;
};

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A bijection on 40-bit integers (odd multiplier and xorshift are both invertible mod 2^40), so
 * distinct flow indices below 2^40 get distinct (source address, source port) keys. */
static uint64_t permute40(uint64_t x, uint64_t seed) {
    const uint64_t mask = (1ULL << 40) - 1;
    x = (x ^ seed) & mask;
    x = (x * 0x9E3779B97FULL) & mask;       /* odd */
    x ^= x >> 17;
    x = (x * 0xC2B2AE3D27ULL) & mask;       /* odd */
    x ^= x >> 13;
    return x & mask;
}

static inline uint8_t *put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; return p + 2; }
static inline uint8_t *put32(uint8_t *p, uint32_t v) {
    p[0] = v >> 24; p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; return p + 4;
}
static inline uint8_t *put64(uint8_t *p, uint64_t v) { p = put32(p, (uint32_t)(v >> 32)); return put32(p, (uint32_t)v); }

/* Whether flow i is IPv6: spreads ratio*N IPv6 flows evenly and deterministically over the run. */
static bool flow_is_v6(uint64_t i, double ratio) {
    if (ratio <= 0) return false;
    if (ratio >= 1) return true;
    return (uint64_t)((double)(i + 1) * ratio) > (uint64_t)((double)i * ratio);
}

/* Writes flow i's record for its template; returns the end of the record. */
static uint8_t *put_record(uint8_t *p, uint64_t i, bool v6, const struct options *o, uint64_t base_ms,
                           struct totals *t) {
    uint64_t key = permute40(i, o->seed);
    uint64_t h = splitmix64(i ^ (o->seed * 0x2545F4914F6CDD1DULL));
    uint16_t src_port = (uint16_t)(key >> 24);
    uint16_t dst_port = (h & 3) == 0 ? (uint16_t)(1024 + ((h >> 2) & 0x7fff)) : (uint16_t)((const uint16_t[]){443, 80, 53})[(h >> 2) % 3];
    uint8_t proto = ((h >> 18) % 10) < 8 ? 6 : 17;
    uint16_t flags = proto == 6 ? (uint16_t)(0x10 | ((h >> 22) & 0x0f)) : 0;
    uint32_t packets = 1 + (uint32_t)((h >> 26) % 1000);
    uint64_t octets = (uint64_t)packets * (40 + ((h >> 36) % 1461));
    uint64_t start = base_ms + (i % 60000);
    uint64_t end = start + ((h >> 48) % 30000);

    if (v6) {
        uint8_t src[16] = {0xfd, 0x00, 0x6b, 0x66, 0x6c, 0x6f, 0x77, 0};   /* fd00:6b66:6c6f:7700::/56 */
        uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8};                       /* 2001:db8::/32 */
        for (int b = 0; b < 5; b++) src[15 - b] = (uint8_t)(key >> (8 * b));
        for (int b = 0; b < 8; b++) dst[15 - b] = (uint8_t)(h >> (8 * b));
        memcpy(p, src, 16); p += 16;
        memcpy(p, dst, 16); p += 16;
    } else {
        p = put32(p, (uint32_t)o->src_net << 24 | (uint32_t)(key & 0xffffff));   /* 10.0.0.0/8 by default */
        p = put32(p, 0xac100000u | (uint32_t)(h & 0xfffff));              /* 172.16.0.0/12 */
    }
    p = put16(p, src_port);
    p = put16(p, dst_port);
    *p++ = proto;
    p = put16(p, flags);
    p = put64(p, octets);
    p = put32(p, packets);
    p = put64(p, start);
    p = put64(p, end);
    *p++ = (uint8_t)((h >> 56) & 0xfc);

    t->sum_packets += packets;
    t->sum_octets += octets;
    return p;
}

static uint8_t *put_message_header(uint8_t *p, uint32_t sequence, uint32_t domain) {
    p = put16(p, IPFIX_VERSION);
    p = put16(p, 0);                       /* length, patched by finish_message() */
    p = put32(p, (uint32_t)(wall_ms() / 1000));
    p = put32(p, sequence);
    return put32(p, domain);
}

static void finish_message(uint8_t *start, uint8_t *end) { put16(start + 2, (uint16_t)(end - start)); }

static uint8_t *put_template(uint8_t *p, uint16_t template_id, const struct field *f, size_t count) {
    p = put16(p, template_id);
    p = put16(p, (uint16_t)count);
    for (size_t k = 0; k < count; k++) { p = put16(p, f[k].id); p = put16(p, f[k].length); }
    return p;
}

/* A template message carrying both templates (a collector must not need the v6 one, but it costs nothing). */
static size_t build_template_message(uint8_t *buf, const struct exporter *e) {
    uint8_t *p = put_message_header(buf, e->sequence, e->domain);
    uint8_t *set = p;
    p = put16(p, TEMPLATE_SET_ID);
    p = put16(p, 0);
    p = put_template(p, TEMPLATE_ID_V4, fields_v4, FIELD_COUNT(fields_v4));
    p = put_template(p, TEMPLATE_ID_V6, fields_v6, FIELD_COUNT(fields_v6));
    put16(set + 2, (uint16_t)(p - set));
    finish_message(buf, p);
    return (size_t)(p - buf);
}

/* Builds one data message holding flows [*next, ...) until the datagram is full or `last` is reached:
 * the IPv4 records in one set, the IPv6 ones in a second set. Advances *next. */
static size_t build_data_message(uint8_t *buf, struct exporter *e, uint64_t *next, uint64_t last,
                                 const struct options *o, uint64_t base_ms, struct totals *t,
                                 uint32_t *v4_records, uint32_t *v6_records) {
    /* First decide how many flows fit, so the two sets can be written in one pass each. */
    size_t budget = (size_t)o->max_datagram - MESSAGE_HEADER_LEN;
    uint64_t first = *next, end = first;
    size_t n4 = 0, n6 = 0;
    while (end < last) {
        bool v6 = flow_is_v6(end, o->v6_ratio);
        size_t need = (size_t)(v6 ? RECORD_LEN_V6 : RECORD_LEN_V4);
        size_t used = (n4 ? SET_HEADER_LEN + n4 * RECORD_LEN_V4 : 0) + (n6 ? SET_HEADER_LEN + n6 * RECORD_LEN_V6 : 0);
        if ((v6 ? n6 : n4) == 0) need += SET_HEADER_LEN;
        if (used + need > budget) break;
        if (o->records_per_datagram && n4 + n6 >= (size_t)o->records_per_datagram) break;
        if (v6) n6++; else n4++;
        end++;
    }
    uint8_t *p = put_message_header(buf, e->sequence, e->domain);
    for (int pass = 0; pass < 2; pass++) {
        bool v6 = pass == 1;
        if ((v6 ? n6 : n4) == 0) continue;
        uint8_t *set = p;
        p = put16(p, v6 ? TEMPLATE_ID_V6 : TEMPLATE_ID_V4);
        p = put16(p, 0);
        for (uint64_t i = first; i < end; i++)
            if (flow_is_v6(i, o->v6_ratio) == v6) p = put_record(p, i, v6, o, base_ms, t);
        put16(set + 2, (uint16_t)(p - set));
    }
    finish_message(buf, p);
    e->sequence += (uint32_t)(n4 + n6);
    *v4_records = (uint32_t)n4;
    *v6_records = (uint32_t)n6;
    *next = end;
    return (size_t)(p - buf);
}

static void usage(FILE *out) {
    fprintf(out,
        "usage: ipfix-gen --dest HOST:PORT [options]\n"
        "  --dest HOST:PORT        collector address (IPv4, [IPv6] or name)\n"
        "  --rate FLOWS/S          target flow rate; 0 = flat out (default 0)\n"
        "  --flows N               flows to send (default 1000000)\n"
        "  --exporters K           exporters, one source port each, 1..10000 (default 1)\n"
        "  --v6-ratio R            fraction of IPv6 flows, 0..1 (default 0)\n"
        "  --seed S                seed for record contents (default 1)\n"
        "  --burst B               datagrams per sendmmsg and per exporter turn (default 32 / exporters, min 1)\n"
        "  --max-datagram BYTES    IPFIX message size limit (default 1400)\n"
        "  --records-per-datagram N  at most N data records per message; 0 = as many as fit (default 0)\n"
        "  --template-refresh SEC  resend templates per exporter this often (default 5)\n"
        "  --templates-known       the collector already has the templates (an earlier run from the same\n"
        "                          --source-port-base sent them): no template before the first data set;\n"
        "                          exporters' refreshes are spread evenly over the refresh period\n"
        "  --domain-base D         observation domain of exporter k is D+k (default 1)\n"
        "  --source ADDR           local address to send from (default: any)\n"
        "  --source-port-base P    exporter k sends from port P+k (default: kernel-chosen)\n"
        "  --sndbuf BYTES          SO_SNDBUF per socket (default: system)\n"
        "  --src-net OCTET         IPv4 sources are OCTET.x.y.z (default 10)\n"
        "Prints one line: ipfix-gen flows=.. datagrams=.. seconds=.. rate=.. (key=value pairs).\n");
}

static int parse_options(int argc, char **argv, struct options *o) {
    static const struct option longopts[] = {
        {"dest", required_argument, 0, 'd'}, {"rate", required_argument, 0, 'r'},
        {"flows", required_argument, 0, 'n'}, {"exporters", required_argument, 0, 'e'},
        {"v6-ratio", required_argument, 0, '6'}, {"seed", required_argument, 0, 's'},
        {"burst", required_argument, 0, 'b'}, {"max-datagram", required_argument, 0, 'm'},
        {"template-refresh", required_argument, 0, 't'}, {"templates-known", no_argument, 0, 'K'}, {"domain-base", required_argument, 0, 'D'},
        {"source", required_argument, 0, 'S'}, {"source-port-base", required_argument, 0, 'P'},
        {"sndbuf", required_argument, 0, 'B'}, {"src-net", required_argument, 0, 'N'},
        {"records-per-datagram", required_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    *o = (struct options){.flows = 1000000, .exporters = 1, .seed = 1, .max_datagram = 1400,
                          .template_refresh = 5, .domain_base = 1, .src_net = 10};
    int c, index = 0;
    char *end;
    while ((c = getopt_long(argc, argv, "h", longopts, &index)) != -1) {
        errno = 0;
        end = NULL;
        switch (c) {
        case 'd': o->dest = optarg; break;
        case 'r': o->rate = strtod(optarg, &end); break;
        case 'n': o->flows = strtoull(optarg, &end, 10); break;
        case 'e': o->exporters = (int)strtol(optarg, &end, 10); break;
        case '6': o->v6_ratio = strtod(optarg, &end); break;
        case 's': o->seed = strtoull(optarg, &end, 10); break;
        case 'b': o->burst = (int)strtol(optarg, &end, 10); break;
        case 'm': o->max_datagram = (int)strtol(optarg, &end, 10); break;
        case 't': o->template_refresh = strtod(optarg, &end); break;
        case 'K': o->templates_known = true; break;
        case 'D': o->domain_base = (uint32_t)strtoul(optarg, &end, 10); break;
        case 'S': o->source = optarg; break;
        case 'P': o->source_port_base = (int)strtol(optarg, &end, 10); break;
        case 'R': o->records_per_datagram = (int)strtol(optarg, &end, 10); break;
        case 'B': o->sndbuf = (int)strtol(optarg, &end, 10); break;
        case 'N': {
            long net = strtol(optarg, &end, 10);
            if (net < 1 || net > 223) { fprintf(stderr, "ipfix-gen: --src-net %ld is not a unicast first octet\n", net); return -1; }
            o->src_net = (uint8_t)net;
            break;
        }
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
        if (end && (*end != '\0' || errno)) {
            fprintf(stderr, "ipfix-gen: option --%s: '%s' is not a number\n", longopts[index].name, optarg);
            return -1;
        }
    }
    if (!o->dest) { fprintf(stderr, "ipfix-gen: --dest HOST:PORT is required\n"); return -1; }
    if (o->exporters < 1 || o->exporters > MAX_EXPORTERS) {
        fprintf(stderr, "ipfix-gen: --exporters %d is outside 1..%d\n", o->exporters, MAX_EXPORTERS); return -1;
    }
    if (o->v6_ratio < 0 || o->v6_ratio > 1) { fprintf(stderr, "ipfix-gen: --v6-ratio %g is outside 0..1\n", o->v6_ratio); return -1; }
    if (o->rate < 0) { fprintf(stderr, "ipfix-gen: --rate %g is negative\n", o->rate); return -1; }
    int smallest = MESSAGE_HEADER_LEN + SET_HEADER_LEN + RECORD_LEN_V6;
    if (o->max_datagram < smallest || o->max_datagram > MAX_DATAGRAM) {
        fprintf(stderr, "ipfix-gen: --max-datagram %d is outside %d..%d\n", o->max_datagram, smallest, MAX_DATAGRAM); return -1;
    }
    if (o->records_per_datagram < 0) {
        fprintf(stderr, "ipfix-gen: --records-per-datagram %d is negative\n", o->records_per_datagram); return -1;
    }
    if (o->burst == 0) o->burst = o->exporters >= 32 ? 1 : 32 / o->exporters;
    if (o->burst < 1 || o->burst > MAX_BURST) { fprintf(stderr, "ipfix-gen: --burst %d is outside 1..%d\n", o->burst, MAX_BURST); return -1; }
    if (o->source_port_base && (o->source_port_base < 1 || o->source_port_base + o->exporters - 1 > 65535)) {
        fprintf(stderr, "ipfix-gen: --source-port-base %d leaves no room for %d exporters\n", o->source_port_base, o->exporters); return -1;
    }
    return 0;
}

/* Resolves "host:port", "[v6]:port". */
static int resolve(const char *spec, int passive, struct sockaddr_storage *out, socklen_t *len) {
    char host[256];
    const char *port;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':') return -1;
        snprintf(host, sizeof host, "%.*s", (int)(close - spec - 1), spec + 1);
        port = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon) return -1;
        snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
        port = colon + 1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = passive ? AI_PASSIVE : 0}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) { fprintf(stderr, "ipfix-gen: cannot resolve '%s': %s\n", spec, gai_strerror(rc)); return -1; }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int open_exporters(struct exporter *ex, const struct options *o, int family) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)o->exporters + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (int k = 0; k < o->exporters; k++) {
        int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) { fprintf(stderr, "ipfix-gen: socket for exporter %d: %s\n", k, strerror(errno)); return -1; }
        if (o->sndbuf > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o->sndbuf, sizeof o->sndbuf);
        struct sockaddr_storage local = {0};
        socklen_t local_len;
        if (o->source) {
            char spec[300];
            snprintf(spec, sizeof spec, strchr(o->source, ':') ? "[%s]:%d" : "%s:%d", o->source,
                     o->source_port_base ? o->source_port_base + k : 0);
            if (resolve(spec, 1, &local, &local_len)) return -1;
        } else {
            local.ss_family = (sa_family_t)family;
            local_len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
            uint16_t port = htons((uint16_t)(o->source_port_base ? o->source_port_base + k : 0));
            if (family == AF_INET6) ((struct sockaddr_in6 *)&local)->sin6_port = port;
            else ((struct sockaddr_in *)&local)->sin_port = port;
        }
        if (bind(fd, (struct sockaddr *)&local, local_len)) {
            fprintf(stderr, "ipfix-gen: bind for exporter %d: %s\n", k, strerror(errno)); return -1;
        }
        socklen_t got_len = sizeof local;
        getsockname(fd, (struct sockaddr *)&local, &got_len);
        ex[k] = (struct exporter){
            .fd = fd,
            .port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&local)->sin6_port : ((struct sockaddr_in *)&local)->sin_port),
            .domain = o->domain_base + (uint32_t)k,
            .last_template_ns = INT64_MIN,
        };
    }
    return 0;
}

/* Sends msgs[0..count) on fd, retrying partial sends; counts failures rather than giving up on a run.
 * Returns how many datagrams went out (a prefix of msgs). */
static unsigned send_all(int fd, struct mmsghdr *msgs, unsigned count, struct totals *t) {
    unsigned done = 0;
    int consecutive_failures = 0;
    while (done < count && consecutive_failures < 1000) {
        int n = sendmmsg(fd, msgs + done, count - done, 0);
        if (n < 0) {
            if (errno == EINTR && stop_requested) break;
            t->send_errors++;
            consecutive_failures++;
            if (errno == ENOBUFS || errno == EAGAIN) { struct timespec ts = {0, 50000}; nanosleep(&ts, NULL); }
            else if (errno == ECONNREFUSED) continue;   /* an ICMP error from an earlier datagram */
            else { fprintf(stderr, "ipfix-gen: sendmmsg: %s\n", strerror(errno)); break; }
            continue;
        }
        consecutive_failures = 0;
        for (int k = 0; k < n; k++) t->bytes += msgs[done + (unsigned)k].msg_len;
        done += (unsigned)n;
    }
    return done;
}

static void print_summary(const struct options *o, const struct totals *t, double seconds) {
    printf("ipfix-gen flows=%" PRIu64 " datagrams=%" PRIu64 " template_datagrams=%" PRIu64 " bytes=%" PRIu64
           " seconds=%.3f rate=%.0f target_rate=%.0f exporters=%d v6_flows=%" PRIu64 " seed=%" PRIu64
           " sum_packets=%" PRIu64 " sum_octets=%" PRIu64 " send_errors=%" PRIu64 " unsent_flows=%" PRIu64 " dest=%s\n",
           t->flows, t->datagrams, t->template_datagrams, t->bytes, seconds,
           seconds > 0 ? (double)t->flows / seconds : 0.0, o->rate, o->exporters, t->flows_v6, o->seed,
           t->sum_packets, t->sum_octets, t->send_errors, t->unsent_flows, o->dest);
    fflush(stdout);
}

int main(int argc, char **argv) {
    struct options o;
    if (parse_options(argc, argv, &o)) return 2;

    struct sockaddr_storage dest;
    socklen_t dest_len;
    if (resolve(o.dest, 0, &dest, &dest_len)) {
        fprintf(stderr, "ipfix-gen: --dest '%s' is not HOST:PORT\n", o.dest);
        return 2;
    }
    struct exporter *ex = calloc((size_t)o.exporters, sizeof *ex);
    if (!ex || open_exporters(ex, &o, dest.ss_family)) return 1;

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    static uint8_t buffers[MAX_BURST + 1][MAX_DATAGRAM];
    struct mmsghdr msgs[MAX_BURST + 1];
    struct iovec iov[MAX_BURST + 1];
    uint32_t v4_records[MAX_BURST + 1], v6_records[MAX_BURST + 1];
    for (int k = 0; k <= MAX_BURST; k++) {
        iov[k] = (struct iovec){.iov_base = buffers[k]};
        msgs[k] = (struct mmsghdr){.msg_hdr = {.msg_name = &dest, .msg_namelen = dest_len, .msg_iov = &iov[k], .msg_iovlen = 1}};
    }

    struct totals t = {0};
    const uint64_t base_ms = wall_ms();
    const int64_t refresh_ns = (int64_t)(o.template_refresh * 1e9);
    const int64_t start_ns = now_ns();
    if (o.templates_known)  /* steady state: exporter k refreshed k/exporters of a period ago */
        for (int k = 0; k < o.exporters; k++)
            ex[k].last_template_ns = start_ns - (int64_t)((double)refresh_ns * k / o.exporters);
    uint64_t next_flow = 0;
    int turn = 0;

    while (next_flow < o.flows && !stop_requested) {
        struct exporter *e = &ex[turn];
        turn = (turn + 1) % o.exporters;
        int64_t now = now_ns();

        unsigned count = 0;
        bool with_template = e->last_template_ns == INT64_MIN || now - e->last_template_ns >= refresh_ns;
        if (with_template) {
            v4_records[count] = v6_records[count] = 0;
            iov[count++].iov_len = build_template_message(buffers[0], e);
            e->last_template_ns = now;
        }
        uint64_t flows_before = next_flow, flows_sent_before = t.flows;
        for (int b = 0; b < o.burst && next_flow < o.flows; b++, count++)
            iov[count].iov_len = build_data_message(buffers[count], e, &next_flow, o.flows, &o, base_ms, &t,
                                                    &v4_records[count], &v6_records[count]);

        /* Pace on flows: this burst may leave once the flows before it are due. */
        if (o.rate > 0) {
            int64_t due = start_ns + (int64_t)((double)flows_before / o.rate * 1e9);
            if (due > now) {
                struct timespec ts = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000};
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !stop_requested) {}
            }
        }
        unsigned sent = send_all(e->fd, msgs, count, &t);
        for (unsigned k = 0; k < sent; k++) {
            if (with_template && k == 0) { t.template_datagrams++; continue; }
            t.datagrams++;
            t.flows += v4_records[k] + v6_records[k];
            t.flows_v6 += v6_records[k];
        }
        if (sent < count) t.unsent_flows += (next_flow - flows_before) - (t.flows - flows_sent_before);
    }
    double seconds = (double)(now_ns() - start_ns) / 1e9;
    print_summary(&o, &t, seconds);
    for (int k = 0; k < o.exporters; k++) close(ex[k].fd);
    free(ex);
    return 0;
}
