/*
 * Prometheus's text exposition format (version 0.0.4), rendered from
 * the visitor's rows into the caller's buffer, snprintf-style.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

typedef struct out {
    char *buf;
    size_t cap;
    size_t len;       /* what the whole text needs so far */
    const char *last; /* the last family's name: HELP/TYPE once each */
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
putf(out_t *o, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A label value or help text, escaped as the format says (a help text
   escapes backslash and newline only; a label value '"' too). */
static void put_escaped(out_t *o, const char *s, bool quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            puts_(o, "\\\\");
        else if (*s == '\n')
            puts_(o, "\\n");
        else if (quote && *s == '"')
            puts_(o, "\\\"");
        else
            put(o, s, 1);
    }
}

/* A value: integers as such (counters stay exact up to 2^53), the rest
   with enough digits to read back the same double. */
static void put_value(out_t *o, double v)
{
    if (isinf(v))
        puts_(o, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        puts_(o, "NaN");
    else if (v >= 0 && v < 9007199254740992.0 && (double)(uint64_t)v == v)
        putf(o, "%llu", (unsigned long long)v); /* no libm for floor() */
    else
        putf(o, "%.17g", v);
}

/* {a="x",b="y"} with one more label (le) when extra is not NULL. */
static void put_labels(out_t *o, const zinx_metric_t *m, const char *extra)
{
    if (m->nlabels == 0 && extra == NULL)
        return;
    puts_(o, "{");
    for (size_t i = 0; i < m->nlabels; i++) {
        putf(o, "%s%s=\"", i > 0 ? "," : "", m->labels[i].name);
        put_escaped(o, m->labels[i].value, true);
        puts_(o, "\"");
    }
    if (extra != NULL)
        putf(o, "%sle=\"%s\"", m->nlabels > 0 ? "," : "", extra);
    puts_(o, "}");
}

static const char *type_name(zinx_metric_type_t t)
{
    return t == ZINX_METRIC_COUNTER ? "counter"
           : t == ZINX_METRIC_GAUGE ? "gauge"
                                    : "histogram";
}

static void put_histogram(out_t *o, const zinx_metric_t *m)
{
    for (size_t i = 0; i <= m->nbuckets; i++) {
        char le[32];
        if (i < m->nbuckets)
            snprintf(le, sizeof(le), "%.17g", m->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        putf(o, "%s_bucket", m->name);
        put_labels(o, m, le);
        putf(o, " %llu\n",
             (unsigned long long)(i < m->nbuckets ? m->buckets[i] : m->count));
    }
    putf(o, "%s_sum", m->name);
    put_labels(o, m, NULL);
    puts_(o, " ");
    put_value(o, m->value);
    putf(o, "\n%s_count", m->name);
    put_labels(o, m, NULL);
    putf(o, " %llu\n", (unsigned long long)m->count);
}

static int render(const zinx_metric_t *m, void *udata)
{
    out_t *o = udata;
    if (o->last == NULL || strcmp(o->last, m->name) != 0) {
        putf(o, "# HELP %s ", m->name);
        put_escaped(o, m->help, false);
        putf(o, "\n# TYPE %s %s\n", m->name, type_name(m->type));
        o->last = m->name; /* the library's: lives past the call */
    }
    if (m->type == ZINX_METRIC_HISTOGRAM) {
        put_histogram(o, m);
        return 0;
    }
    puts_(o, m->name);
    put_labels(o, m, NULL);
    puts_(o, " ");
    put_value(o, m->value);
    puts_(o, "\n");
    return 0;
}

long zinx_server_metrics_text(const zinx_server_t *s, char *buf, size_t cap)
{
    if (s == NULL || (buf == NULL && cap > 0))
        return ZINX_EINVAL;
    out_t o = {.buf = buf, .cap = cap > 0 ? cap - 1 : 0};
    zinx_server_metrics_visit(s, render, &o);
    if (cap > 0)
        buf[o.len < o.cap ? o.len : o.cap] = '\0';
    return (long)o.len;
}
