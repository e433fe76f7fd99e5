/*
 * A multi-connection load driver: opens `conns` connections from
 * `threads` threads (each with its own epoll loop) and on each sends
 * `msgs` checksummed echo requests (test_frame.h payloads, TLV, on
 * TC_ECHO_ID) with at most `window` outstanding, checking every reply
 * for loss, duplication, reordering and corruption. Connections stay
 * open until load_close(), so all of them are open at the same time at
 * the end.
 *
 *     load_t l;
 *     load_init(&l, port, conns, msgs);   (then adjust the inputs)
 *     load_run(&l);
 *     load_assert_clean(&l, "what");
 *     load_close(&l);
 *
 * load_run() and load_assert_clean() fail the test (cmocka): call them on
 * the test's thread.
 */
#ifndef TEST_LOAD_H
#define TEST_LOAD_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct load_conn load_conn_t;

typedef struct load {
    /* inputs */
    int port;
    uint32_t conns, msgs, threads, window;
    uint32_t max_connecting; /* per thread: opened but not yet answered */
    int timeout_ms;
    /* outputs */
    atomic_long completed, lost, duplicated, corrupt, failed, dropped;
    atomic_int first_error;
    /* state */
    load_conn_t *c;
} load_t;

/* Sets the inputs: 3 threads, a window of 16, at most 256 connecting per
   thread, 120 s in all. */
void load_init(load_t *l, int port, uint32_t conns, uint32_t msgs);

/* Runs the load to completion (or timeout). Returns the elapsed ms. */
uint64_t load_run(load_t *l);

/* Fails the test unless every connection got every reply intact and in
   order. */
void load_assert_clean(load_t *l, const char *what);

/* Closes the connections and frees the state. */
void load_close(load_t *l);

#endif /* TEST_LOAD_H */
