// Small C helpers for what Swift's Glibc overlay does not expose cleanly: batched receive (recvmmsg),
// single-writer counters in shared memory, and memfd_create. Kept tiny; all policy lives in Swift.
#ifndef KFLOW_SHIMS_H
#define KFLOW_SHIMS_H

#include <stdint.h>
#include <stddef.h>
#include <sys/socket.h>

// ---- Batched UDP receive -------------------------------------------------------------------------
// One preallocated batch of `count` buffers of `size` bytes each, filled by one recvmmsg call.
typedef struct kflow_rx_batch kflow_rx_batch;

kflow_rx_batch *kflow_rx_batch_create(unsigned count, unsigned size);
void kflow_rx_batch_destroy(kflow_rx_batch *batch);
// Waits up to timeout_ms (poll) and receives up to `count` datagrams without blocking further.
// Returns the number received (0 on timeout or EAGAIN/EINTR), or -errno on a real error.
int kflow_rx_batch_receive(kflow_rx_batch *batch, int fd, int timeout_ms);
// Datagram i of the last receive: its bytes, length (truncated datagrams are flagged), and source.
const uint8_t *kflow_rx_batch_data(const kflow_rx_batch *batch, unsigned i, size_t *length, int *truncated);
const struct sockaddr_storage *kflow_rx_batch_source(const kflow_rx_batch *batch, unsigned i);

// ---- Counters in shared memory ---------------------------------------------------------------------
// Each counter has exactly one writer (its worker); readers tolerate a slightly stale value. Relaxed
// atomics make that well defined and compile to plain loads and stores on x86-64 and arm64.
static inline void kflow_counter_add(uint64_t *counter, uint64_t delta) {
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + delta, __ATOMIC_RELAXED);
}
static inline void kflow_counter_store(uint64_t *counter, uint64_t value) {
    __atomic_store_n(counter, value, __ATOMIC_RELAXED);
}
static inline uint64_t kflow_counter_load(const uint64_t *counter) {
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

// The orderings a sequence lock in shared memory needs (SeqLock.swift): the writer's odd sequence is
// ordered before its data by a release fence and published after it by a release store; the reader
// loads the sequence with acquire and fences its data loads (acquire) before checking it again.
static inline void kflow_sequence_store_release(uint64_t *sequence, uint64_t value) {
    __atomic_store_n(sequence, value, __ATOMIC_RELEASE);
}
static inline uint64_t kflow_sequence_load_acquire(const uint64_t *sequence) {
    return __atomic_load_n(sequence, __ATOMIC_ACQUIRE);
}
static inline void kflow_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
static inline void kflow_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }

// ---- Spreading one exporter over the SO_REUSEPORT group ----------------------------------------------
// Attaches a classic BPF program to fd's SO_REUSEPORT group that sends each datagram to socket
// (random % n) of the group, whatever its source; -errno on failure. n >= 1.
int kflow_reuseport_spread(int fd, unsigned n);
// Removes the group's program (back to the kernel's 4-tuple hash); 0 when there was none, else -errno.
int kflow_reuseport_unspread(int fd);

// ---- Misc -------------------------------------------------------------------------------------------
// memfd_create with MFD_CLOEXEC cleared so a spawned worker can inherit it; -errno on failure.
int kflow_memfd_create(const char *name);
// prctl(PR_SET_PDEATHSIG): the kernel sends `sig` to this process when its parent dies.
int kflow_set_parent_death_signal(int sig);
// signalfd(2) for `set` (a sigset_t), non-blocking and close-on-exec; -errno on failure.
int kflow_signalfd(const void *set);

#endif
