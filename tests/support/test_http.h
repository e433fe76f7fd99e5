/*
 * A tiny HTTP/1.1 client for tests of the metrics listener and of
 * Prometheus's API: one request per connection, the answer read to EOF
 * with a deadline. Never calls cmocka.
 */
#ifndef TEST_HTTP_H
#define TEST_HTTP_H

#include <stddef.h>

/* Connects to 127.0.0.1:port, sends req[0..len) and reads until the
   peer closes, at most cap - 1 bytes (NUL-terminated) or timeout_ms.
   Returns the bytes read, or a negated errno (-ETIMEDOUT when the peer
   did not close in time). */
long th_exchange(int port, const char *req, size_t len, char *out, size_t cap,
                 int timeout_ms);

/* "GET path HTTP/1.1" with Host and Connection: close, through
   th_exchange(). */
long th_get(int port, const char *path, char *out, size_t cap, int timeout_ms);

/* The status code of an answer, or -1. */
int th_status(const char *resp);

/* The value of header name (case-insensitive) copied into out (cap
   bytes), or -1 when absent. */
int th_header(const char *resp, const char *name, char *out, size_t cap);

/* The body: what follows the blank line, or NULL. */
const char *th_body(const char *resp);

#endif /* TEST_HTTP_H */
