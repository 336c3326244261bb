#define _GNU_SOURCE
#include "kflow_shims.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <linux/filter.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif
#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68
#endif

struct kflow_rx_batch {
    unsigned count;
    unsigned size;
    uint8_t *buffers;
    struct mmsghdr *headers;
    struct iovec *iovecs;
    struct sockaddr_storage *sources;
};

kflow_rx_batch *kflow_rx_batch_create(unsigned count, unsigned size) {
    if (count == 0 || size == 0) return NULL;
    kflow_rx_batch *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->count = count;
    b->size = size;
    b->buffers = malloc((size_t)count * size);
    b->headers = calloc(count, sizeof(struct mmsghdr));
    b->iovecs = calloc(count, sizeof(struct iovec));
    b->sources = calloc(count, sizeof(struct sockaddr_storage));
    if (!b->buffers || !b->headers || !b->iovecs || !b->sources) {
        kflow_rx_batch_destroy(b);
        return NULL;
    }
    for (unsigned i = 0; i < count; i++) {
        b->iovecs[i].iov_base = b->buffers + (size_t)i * size;
        b->iovecs[i].iov_len = size;
        b->headers[i].msg_hdr.msg_iov = &b->iovecs[i];
        b->headers[i].msg_hdr.msg_iovlen = 1;
        b->headers[i].msg_hdr.msg_name = &b->sources[i];
    }
    return b;
}

void kflow_rx_batch_destroy(kflow_rx_batch *b) {
    if (!b) return;
    free(b->buffers);
    free(b->headers);
    free(b->iovecs);
    free(b->sources);
    free(b);
}

int kflow_rx_batch_receive(kflow_rx_batch *b, int fd, int timeout_ms) {
    for (unsigned i = 0; i < b->count; i++) {
        b->headers[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        b->headers[i].msg_hdr.msg_flags = 0;
        b->headers[i].msg_len = 0;
    }
    int n = recvmmsg(fd, b->headers, b->count, MSG_DONTWAIT, NULL);
    if (n > 0) return n;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -errno;
    if (timeout_ms <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0) return (r < 0 && errno != EINTR) ? -errno : 0;
    n = recvmmsg(fd, b->headers, b->count, MSG_DONTWAIT, NULL);
    if (n >= 0) return n;
    return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;
}

const uint8_t *kflow_rx_batch_data(const kflow_rx_batch *b, unsigned i, size_t *length, int *truncated) {
    *length = b->headers[i].msg_len;
    *truncated = (b->headers[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    return b->buffers + (size_t)i * b->size;
}

const struct sockaddr_storage *kflow_rx_batch_source(const kflow_rx_batch *b, unsigned i) {
    return &b->sources[i];
}

int kflow_memfd_create(const char *name) {
    int fd = memfd_create(name, 0);
    return fd < 0 ? -errno : fd;
}

int kflow_set_parent_death_signal(int sig) {
    return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0 ? 0 : -errno;
}

int kflow_signalfd(const void *set) {
    int fd = signalfd(-1, (const sigset_t *)set, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

int kflow_reuseport_spread(int fd, unsigned n) {
    if (n == 0) return -EINVAL;
    // A = a random 32-bit number (an ancillary load: no packet bytes are read); A %= n; return A. The
    // kernel falls back to its hash for an index past the group's end.
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (unsigned)(SKF_AD_OFF + SKF_AD_RANDOM)),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    struct sock_fprog program = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof(program)) == 0 ? 0 : -errno;
}

int kflow_reuseport_unspread(int fd) {
    int unused = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &unused, sizeof(unused)) == 0) return 0;
    return errno == ENOENT ? 0 : -errno;
}
