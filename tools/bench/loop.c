/*
 * tools/bench/loop.c: one libuv loop thread of the load generator. It owns a share of the
 * clients and follows the run's phase, which main announces through a uv_async wake-up:
 * SETUP connects (idle connections a bounded number at a time), RUN starts publishing or the
 * connect storm, DRAIN stops publishing, DONE disconnects everyone and lets the loop end.
 */
#include "tools/bench/bench.h"

#include <stdlib.h>

#define RBUF_SIZE (256u * 1024u)

void loop_add_client(bench_thread_t *th, bench_client_t *c)
{
    if (th->nclients == th->cap_clients) {
        uint32_t cap = th->cap_clients ? th->cap_clients * 2 : 64;
        bench_client_t **p = realloc(th->clients, cap * sizeof *p);
        if (!p) {
            fprintf(stderr, "acemq-bench: out of memory\n");
            exit(2);
        }
        th->clients = p;
        th->cap_clients = cap;
    }
    c->th = th;
    th->clients[th->nclients++] = c;
}

/* Idle connections open a few at a time so a listen backlog never overflows into SYN retries. */
void loop_idle_next(bench_thread_t *th)
{
    uint32_t limit = g_cfg.concurrency / (uint32_t)g_cfg.threads;
    if (limit < 1)
        limit = 1;
    /* A connect that fails at once (out of fds) lands back here; the outer call carries on. */
    if (th->starting)
        return;
    th->starting = true;
    while (th->pending < limit && th->next_start < th->nclients && run_phase() < PH_DONE) {
        bench_client_t *c = th->clients[th->next_start++];
        th->pending++;
        client_start(c);
    }
    th->starting = false;
}

void loop_pump_all(bench_thread_t *th)
{
    th->stalled = false;
    for (uint32_t i = 0; i < th->nclients; i++)
        if (th->clients[i]->role == ROLE_PUB)
            client_pump(th->clients[i]);
}

/* The pacing of --rate; unthrottled, it also restarts publishers whose subscribers live on
 * another loop (same-loop deliveries restart them at once, see client.c). */
static void on_tick(uv_timer_t *t)
{
    loop_pump_all(t->data);
}

static bool all_closed(const bench_thread_t *th)
{
    for (uint32_t i = 0; i < th->nclients; i++) {
        cstate_t s = th->clients[i]->state;
        if (s != CS_CLOSED && s != CS_NEW)
            return false;
    }
    return true;
}

static void on_sweep(uv_timer_t *t)
{
    bench_thread_t *th = t->data;
    uint64_t now = now_ns();
    for (uint32_t i = 0; i < th->nclients; i++)
        client_sweep(th->clients[i], now);
    if (th->seen_phase == PH_DONE && all_closed(th)) {
        uv_close((uv_handle_t *)&th->tick, NULL);
        uv_close((uv_handle_t *)&th->sweep, NULL);
        uv_close((uv_handle_t *)&th->wake, NULL);
    }
}

static void enter_phase(bench_thread_t *th, int ph)
{
    switch (ph) {
    case PH_RUN:
        if (g_cfg.rate || g_cfg.threads > 1)
            uv_timer_start(&th->tick, on_tick, 1, 1);
        for (uint32_t i = 0; i < th->nclients; i++) {
            bench_client_t *c = th->clients[i];
            if (c->role == ROLE_STORM)
                client_start(c);
            else
                client_pump(c);
        }
        break;
    case PH_DRAIN:
        uv_timer_stop(&th->tick);
        break;
    case PH_DONE:
        uv_timer_stop(&th->tick);
        for (uint32_t i = 0; i < th->nclients; i++)
            client_disconnect(th->clients[i]);
        /* The sweep closes the loop's own handles once every client is closed. */
        uv_timer_start(&th->sweep, on_sweep, 50, 50);
        break;
    default:
        break;
    }
}

static void on_wake(uv_async_t *a)
{
    bench_thread_t *th = a->data;
    int ph = run_phase();
    /* Phases only move forward; a skipped one (SETUP straight to DONE) still runs its steps. */
    while (th->seen_phase < ph)
        enter_phase(th, ++th->seen_phase);
}

static void thread_main(void *arg)
{
    bench_thread_t *th = arg;
    uv_run(&th->loop, UV_RUN_DEFAULT);
    uv_loop_close(&th->loop);
}

int loop_thread_start(bench_thread_t *th)
{
    int rc = uv_loop_init(&th->loop);
    if (rc)
        return rc;
    th->loop.data = th;
    th->io.rcap = RBUF_SIZE;
    th->io.rbuf = malloc(RBUF_SIZE);
    if (!th->io.rbuf)
        return UV_ENOMEM;
    uv_async_init(&th->loop, &th->wake, on_wake);
    th->wake.data = th;
    uv_timer_init(&th->loop, &th->tick);
    th->tick.data = th;
    uv_timer_init(&th->loop, &th->sweep);
    th->sweep.data = th;
    uv_timer_start(&th->sweep, on_sweep, 250, 250);
    th->seen_phase = PH_SETUP;
    if (g_cfg.scenario == SC_IDLE) {
        loop_idle_next(th);
    } else if (g_cfg.scenario != SC_STORM) {
        for (uint32_t i = 0; i < th->nclients; i++)
            client_start(th->clients[i]);
    }
    return uv_thread_create(&th->tid, thread_main, th);
}

void loop_thread_wake(bench_thread_t *th)
{
    uv_async_send(&th->wake);
}
