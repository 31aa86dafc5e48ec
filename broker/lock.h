/*
 * broker/lock.h: a mutex in 4 bytes, for objects that exist by the hundred thousand.
 *
 * Every session has a lock, and a pthread_mutex_t is 40 bytes: a tenth of what an idle client
 * costs. This is the futex mutex of Ulrich Drepper's "Futexes Are Tricky" (the third version):
 * 0 free, 1 locked, 2 locked with a thread (possibly) waiting; waiting and waking go through the
 * kernel only when there is contention (a waiter sleeps, it does not spin). Like a default
 * pthread mutex it is not recursive and does not check its owner.
 */
#ifndef ACEMQ_BROKER_LOCK_H
#define ACEMQ_BROKER_LOCK_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
    _Atomic uint32_t v; /* zero-initialised: free */
} small_lock_t;

static inline void small_lock(small_lock_t *l)
{
    uint32_t c = 0;
    if (atomic_compare_exchange_strong_explicit(&l->v, &c, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return;
    if (c != 2)
        c = atomic_exchange_explicit(&l->v, 2, memory_order_acquire);
    while (c != 0) {
        syscall(SYS_futex, &l->v, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
        c = atomic_exchange_explicit(&l->v, 2, memory_order_acquire);
    }
}

static inline void small_unlock(small_lock_t *l)
{
    if (atomic_fetch_sub_explicit(&l->v, 1, memory_order_release) != 1) {
        atomic_store_explicit(&l->v, 0, memory_order_release);
        syscall(SYS_futex, &l->v, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

#endif
