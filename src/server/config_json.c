/*
 * Applying JSON text over a configuration: parsing with positions in
 * messages, one key at a time through the key table, all or nothing.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "server/config_internal.h"
#include "zinx/error.h"

static void *field_at(zinx_config_t *cfg, const zinx__key_spec_t *k)
{
    return (char *)cfg + k->offset;
}

static const char *kind_of(const cJSON *item)
{
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsBool(item))
        return "a boolean";
    if (cJSON_IsNull(item))
        return "null";
    if (cJSON_IsArray(item))
        return "an array";
    return "an object";
}

static int apply_text(const zinx__key_spec_t *k, const cJSON *item,
                      zinx_config_t *cfg, char *why, size_t why_len)
{
    if (!cJSON_IsString(item)) {
        zinx__config_msg(why, why_len, "expected a string, got %s",
                         kind_of(item));
        return -1;
    }
    if (zinx__config_check_text(k, item->valuestring, why, why_len) != 0)
        return -1;
    /* Clear the whole array so no byte of the old value survives. */
    char *dst = field_at(cfg, k);
    memset(dst, 0, (size_t)k->max + 1);
    memcpy(dst, item->valuestring, strlen(item->valuestring));
    return 0;
}

static int apply_format(const zinx__key_spec_t *k, const cJSON *item,
                        zinx_config_t *cfg, char *why, size_t why_len)
{
    char q[ZINX__CONFIG_QUOTE_LEN];
    zinx_packet_format_t f;
    if (!cJSON_IsString(item)) {
        zinx__config_msg(why, why_len, "expected a string, got %s",
                         kind_of(item));
        return -1;
    }
    if (zinx_packet_format_parse(item->valuestring, &f) != 0) {
        zinx__config_msg(
            why, why_len,
            "unknown packet format \"%s\" (expected tlv or ltv_le)",
            zinx__config_quote(item->valuestring, q));
        return -1;
    }
    *(zinx_packet_format_t *)field_at(cfg, k) = f;
    return 0;
}

static int apply_named(const zinx__key_spec_t *k, const cJSON *item,
                       zinx_config_t *cfg, char *why, size_t why_len)
{
    char q[ZINX__CONFIG_QUOTE_LEN];
    uint32_t v;
    if (!cJSON_IsString(item)) {
        zinx__config_msg(why, why_len, "expected a string, got %s",
                         kind_of(item));
        return -1;
    }
    if (zinx__key_names_parse(k->names, item->valuestring, &v) != 0) {
        zinx__config_msg(
            why, why_len, "unknown %s \"%s\" (expected %s)", k->names->what,
            zinx__config_quote(item->valuestring, q), k->names->expected);
        return -1;
    }
    *(uint32_t *)field_at(cfg, k) = v;
    return 0;
}

/*
 * JSON has only doubles. Every range in the table is far inside the span
 * where a double holds integers exactly, so a value beyond +-1e18 is out
 * of range whatever it is, and the rest convert to long long without loss.
 */
static int to_integer(const zinx__key_spec_t *k, double d, long long *out,
                      char *why, size_t why_len)
{
    if (!(d >= -1e18 && d <= 1e18)) {
        zinx__config_msg(why, why_len, "%g is out of range %lld..%lld", d,
                         k->min, k->max);
        return -1;
    }
    long long v = (long long)d;
    if ((double)v != d) {
        zinx__config_msg(why, why_len, "expected an integer, got %.15g", d);
        return -1;
    }
    *out = v;
    return 0;
}

static int apply_number(const zinx__key_spec_t *k, const cJSON *item,
                        zinx_config_t *cfg, char *why, size_t why_len)
{
    long long v;
    if (!cJSON_IsNumber(item)) {
        zinx__config_msg(why, why_len, "expected an integer, got %s",
                         kind_of(item));
        return -1;
    }
    if (to_integer(k, item->valuedouble, &v, why, why_len) != 0 ||
        zinx__config_check_range(k, v, why, why_len) != 0)
        return -1;
    if (k->type == ZINX__KEY_INT)
        *(int *)field_at(cfg, k) = (int)v;
    else if (k->type == ZINX__KEY_U64)
        *(uint64_t *)field_at(cfg, k) = (uint64_t)v;
    else
        *(uint32_t *)field_at(cfg, k) = (uint32_t)v;
    return 0;
}

/* Only JSON true and false: 0, 1 or "true" are more likely mistakes. */
static int apply_bool(const zinx__key_spec_t *k, const cJSON *item,
                      zinx_config_t *cfg, char *why, size_t why_len)
{
    if (!cJSON_IsBool(item)) {
        zinx__config_msg(why, why_len, "expected true or false, got %s",
                         kind_of(item));
        return -1;
    }
    *(int *)field_at(cfg, k) = cJSON_IsTrue(item) ? 1 : 0;
    return 0;
}

/*
 * Reads s as octal digits only: no sign, blank or "0o"/"0x" prefix.
 * Beyond 0777777 the value stops growing (it is out of range for any
 * mode by then) so that a long string cannot overflow. Returns 0, or -1
 * when s is not octal.
 */
static int parse_octal(const char *s, long long *out)
{
    long long v = 0;
    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '7')
            return -1;
        if (v <= 0777777)
            v = v * 8 + (*s - '0');
    }
    *out = v;
    return 0;
}

static int apply_mode_text(const zinx__key_spec_t *k, const char *text,
                           long long *v, char *why, size_t why_len)
{
    char q[ZINX__CONFIG_QUOTE_LEN];
    if (parse_octal(text, v) != 0) {
        zinx__config_msg(why, why_len,
                         "\"%s\" is not an octal mode such as \"0660\"",
                         zinx__config_quote(text, q));
        return -1;
    }
    if (*v > k->max) {
        zinx__config_msg(why, why_len, "\"%s\" is out of range 0..0%llo",
                         zinx__config_quote(text, q),
                         (unsigned long long)k->max);
        return -1;
    }
    return 0;
}

/*
 * JSON has no octal numbers, so a number is the plain value (432 is
 * 0660). A number out of range, such as 660 or 644, was most likely
 * meant as octal, and the message says how to write that.
 */
static int apply_mode_number(const zinx__key_spec_t *k, double d, long long *v,
                             char *why, size_t why_len)
{
    if (to_integer(k, d, v, why, why_len) != 0)
        return -1;
    if (*v < k->min || *v > k->max) {
        zinx__config_msg(why, why_len,
                         "%lld is out of range 0..%lld (0%llo); a number is "
                         "the plain value, so write an octal mode as a "
                         "string, such as \"0660\"",
                         *v, k->max, (unsigned long long)k->max);
        return -1;
    }
    return 0;
}

/* Permission bits: an octal string ("0660", "660") or a number. */
static int apply_mode(const zinx__key_spec_t *k, const cJSON *item,
                      zinx_config_t *cfg, char *why, size_t why_len)
{
    long long v;
    if (!cJSON_IsString(item) && !cJSON_IsNumber(item)) {
        zinx__config_msg(why, why_len,
                         "expected an octal string or an integer, got %s",
                         kind_of(item));
        return -1;
    }
    int rc = cJSON_IsString(item)
                 ? apply_mode_text(k, item->valuestring, &v, why, why_len)
                 : apply_mode_number(k, item->valuedouble, &v, why, why_len);
    if (rc == 0)
        *(uint32_t *)field_at(cfg, k) = (uint32_t)v;
    return rc;
}

static int apply_item(const zinx__key_spec_t *k, const cJSON *item,
                      zinx_config_t *cfg, char *why, size_t why_len)
{
    switch (k->type) {
    case ZINX__KEY_STRING:
    case ZINX__KEY_HOST:
        return apply_text(k, item, cfg, why, why_len);
    case ZINX__KEY_FORMAT:
        return apply_format(k, item, cfg, why, why_len);
    case ZINX__KEY_INT:
    case ZINX__KEY_U32:
    case ZINX__KEY_U64:
        return apply_number(k, item, cfg, why, why_len);
    case ZINX__KEY_BOOL:
        return apply_bool(k, item, cfg, why, why_len);
    case ZINX__KEY_MODE:
        return apply_mode(k, item, cfg, why, why_len);
    case ZINX__KEY_NAMED:
        return apply_named(k, item, cfg, why, why_len);
    }
    zinx__config_msg(why, why_len, "unknown key type");
    return -1;
}

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_space(const char *s, size_t len, size_t i)
{
    while (i < len && is_json_space(s[i]))
        i++;
    return i;
}

/* Reports a syntax problem at byte offset pos, as a 1-based line:column. */
static void report_at(const zinx__config_ctx_t *c, const char *json, size_t pos,
                      const char *problem)
{
    unsigned long line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < pos; i++) {
        if (json[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    }
    zinx__config_msg(c->err, c->err_len, "%s: %s at line %lu, column %lu",
                     c->origin, problem, line,
                     (unsigned long)(pos - line_start + 1));
}

/*
 * cJSON ends a string at an escaped NUL and drops the rest without a word,
 * so "127.0.0.1\u0000junk" would pass as a host. Such escapes are found
 * on the raw text, which the parser has already accepted as well formed.
 * Returns the offset of the first one, or len.
 */
static size_t find_nul_escape(const char *json, size_t len)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (json[i] == '"') {
            in_string = !in_string;
        } else if (in_string && json[i] == '\\' && i + 1 < len) {
            if (len - i >= 6 && memcmp(json + i + 1, "u0000", 5) == 0)
                return i;
            i++; /* the escaped character cannot end the string */
        }
    }
    return len;
}

/*
 * Parses json[0..len) into an object. The error position comes from the
 * parse-end pointer of this call, not from cJSON_GetErrorPtr(), which
 * reads state shared by every thread.
 */
static int parse_root(const zinx__config_ctx_t *c, const char *json, size_t len,
                      cJSON **out)
{
    if (skip_space(json, len, 0) == len) {
        zinx__config_msg(c->err, c->err_len,
                         "%s: empty document, expected a JSON object",
                         c->origin);
        return ZINX_ECONFIG;
    }
    const char *end = json;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (root == NULL) {
        size_t pos = end != NULL ? (size_t)(end - json) : 0;
        report_at(c, json, pos < len ? pos : len, "invalid JSON");
        return ZINX_ECONFIG;
    }
    size_t rest = skip_space(json, len, (size_t)(end - json));
    if (rest < len) {
        cJSON_Delete(root);
        report_at(c, json, rest, "unexpected text after the JSON value");
        return ZINX_ECONFIG;
    }
    size_t nul = find_nul_escape(json, len);
    if (nul < len) {
        cJSON_Delete(root);
        report_at(c, json, nul, "\\u0000 is not allowed in a string");
        return ZINX_ECONFIG;
    }
    if (!cJSON_IsObject(root)) {
        zinx__config_msg(c->err, c->err_len,
                         "%s: the top level is %s, expected a JSON object",
                         c->origin, kind_of(root));
        cJSON_Delete(root);
        return ZINX_ECONFIG;
    }
    *out = root;
    return 0;
}

/* A member of the root object and its position in the document. */
struct member {
    const cJSON *item;
    size_t index;
};

static int compare_members(const void *a, const void *b)
{
    const struct member *x = a;
    const struct member *y = b;
    int r = zinx__config_compare_folded(x->item->string, y->item->string);
    if (r != 0)
        return r;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Go's decoder keeps the last of two equal keys without a word; a file
 * that sets a key twice is more likely a mistake than a wish. Sorting
 * keeps this O(n log n) for however many keys a file holds, and the
 * index tie-break makes the first spelling in the file the one named.
 */
static int reject_duplicates(const zinx__config_ctx_t *c, const cJSON *root)
{
    int n = cJSON_GetArraySize(root);
    if (n < 2)
        return 0;
    struct member *m = malloc((size_t)n * sizeof(*m));
    if (m == NULL) {
        zinx__config_msg(c->err, c->err_len, "%s: out of memory", c->origin);
        return ZINX_ENOMEM;
    }
    size_t count = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        m[count].item = item;
        m[count].index = count;
        count++;
    }
    qsort(m, count, sizeof(*m), compare_members);
    int rc = 0;
    for (size_t i = 1; i < count && rc == 0; i++) {
        const char *first = m[i - 1].item->string;
        if (zinx__config_compare_folded(first, m[i].item->string) == 0) {
            char q[ZINX__CONFIG_QUOTE_LEN];
            zinx__config_msg(c->err, c->err_len, "%s: %s: given more than once",
                             c->origin, zinx__config_display_name(first, q));
            rc = ZINX_ECONFIG;
        }
    }
    free(m);
    return rc;
}

static void warn_ignored(const zinx__config_ctx_t *c, const char *name)
{
    if (c->warn == NULL)
        return;
    char msg[ZINX_CONFIG_PATH_MAX + 256];
    char q[ZINX__CONFIG_QUOTE_LEN];
    const char *unused = zinx__config_find_unused(name);
    if (unused != NULL)
        zinx__config_msg(
            msg, sizeof(msg),
            "%s: key \"%s\" is a Zinx setting this library does not "
            "use yet; ignored",
            c->origin, unused);
    else
        zinx__config_msg(msg, sizeof(msg), "%s: unknown key \"%s\" ignored",
                         c->origin, zinx__config_quote(name, q));
    c->warn(ZINX_LOG_WARN, msg, c->warn_udata);
}

/*
 * The program was built against a zinx_config_t without this key's
 * field: it could not read the value, so the key is as good as unknown.
 */
static void warn_newer(const zinx__config_ctx_t *c, const zinx__key_spec_t *k)
{
    if (c->warn == NULL)
        return;
    char msg[ZINX_CONFIG_PATH_MAX + 256];
    zinx__config_msg(msg, sizeof(msg),
                     "%s: key \"%s\" is newer than the program's "
                     "zinx_config_t (struct_size %zu); ignored",
                     c->origin, k->name, c->struct_size);
    c->warn(ZINX_LOG_WARN, msg, c->warn_udata);
}

static int apply_object(const zinx__config_ctx_t *c, const cJSON *root,
                        zinx_config_t *cfg)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        const zinx__key_spec_t *k = zinx__config_find_key(item->string);
        if (k == NULL) {
            warn_ignored(c, item->string);
            continue;
        }
        if (!zinx__config_key_fits(k, c->struct_size)) {
            warn_newer(c, k);
            continue;
        }
        char why[ZINX__CONFIG_WHY_LEN];
        if (apply_item(k, item, cfg, why, sizeof(why)) != 0) {
            zinx__config_msg(c->err, c->err_len, "%s: %s: %s", c->origin,
                             k->name, why);
            return ZINX_ECONFIG;
        }
    }
    return 0;
}

int zinx_config_load_json(zinx_config_t *cfg, const char *json, size_t len,
                          const char *origin, char *err, size_t err_len,
                          zinx_log_fn warn, void *warn_udata)
{
    zinx__config_ctx_t c = {
        origin != NULL ? origin : "<json>", err, err_len, warn, warn_udata, 0};
    zinx__config_msg(err, err_len, "%s", "");
    if (cfg == NULL || (json == NULL && len > 0)) {
        zinx__config_msg(err, err_len, "%s: invalid argument", c.origin);
        return ZINX_EINVAL;
    }
    /* Work on a whole copy: a bad key late in the file must not leave
     * the keys before it applied, and the caller's struct may be
     * shorter than this library's. */
    zinx_config_t next;
    char why[ZINX__CONFIG_WHY_LEN];
    int rc = zinx__config_import(&next, cfg, why, sizeof(why));
    if (rc != 0) {
        zinx__config_msg(err, err_len, "%s: %s", c.origin, why);
        return rc;
    }
    c.struct_size = cfg->struct_size;
    cJSON *root = NULL;
    rc = parse_root(&c, json != NULL ? json : "", len, &root);
    if (rc != 0)
        return rc;
    rc = reject_duplicates(&c, root);
    if (rc == 0)
        rc = apply_object(&c, root, &next);
    cJSON_Delete(root);
    if (rc == 0)
        zinx__config_export(cfg, &next);
    return rc;
}
