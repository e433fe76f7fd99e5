/*
 * Writing a configuration out as zinx.json text: zinx_config_to_json().
 *
 * Walks the same key table the loader reads, so every key the loader
 * takes is written, in the same spelling and form, and loading the text
 * back gives the same configuration.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "server/config_internal.h"
#include "zinx/error.h"
#include "zinx/pack.h"

/* The field of k inside cfg. */
static const void *field_of(const zinx_config_t *cfg, const zinx__key_spec_t *k)
{
    return (const char *)cfg + k->offset;
}

static cJSON *number_of(const zinx_config_t *cfg, const zinx__key_spec_t *k)
{
    const void *f = field_of(cfg, k);
    switch (k->type) {
    case ZINX__KEY_INT:
        return cJSON_CreateNumber(*(const int *)f);
    case ZINX__KEY_U32:
        return cJSON_CreateNumber(*(const uint32_t *)f);
    default: /* ZINX__KEY_U64: every range in the table fits a double */
        return cJSON_CreateNumber((double)*(const uint64_t *)f);
    }
}

/* The JSON value of key k in cfg, or NULL when out of memory or the
   field holds a value no name stands for. */
static cJSON *value_of(const zinx_config_t *cfg, const zinx__key_spec_t *k)
{
    const void *f = field_of(cfg, k);
    switch (k->type) {
    case ZINX__KEY_STRING:
    case ZINX__KEY_HOST:
        return cJSON_CreateString(f);
    case ZINX__KEY_BOOL:
        return cJSON_CreateBool(*(const int *)f != 0);
    case ZINX__KEY_FORMAT:
        return cJSON_CreateString(
            zinx_packet_format_name(*(const zinx_packet_format_t *)f));
    case ZINX__KEY_MODE: {
        char octal[16];
        snprintf(octal, sizeof(octal), "0%03o", *(const uint32_t *)f & 0777u);
        return cJSON_CreateString(octal);
    }
    case ZINX__KEY_NAMED: {
        const char *name = zinx__key_names_find(k->names, *(const uint32_t *)f);
        return name != NULL ? cJSON_CreateString(name) : NULL;
    }
    default:
        return number_of(cfg, k);
    }
}

/* Every key of cfg (a whole struct of this library) into obj. Returns 0,
   ZINX_EINVAL (a field out of its names) or ZINX_ENOMEM. */
static int fill(cJSON *obj, const zinx_config_t *cfg)
{
    for (size_t i = 0; i < zinx__config_key_count; i++) {
        const zinx__key_spec_t *k = &zinx__config_keys[i];
        cJSON *v = value_of(cfg, k);
        if (v == NULL)
            return k->type == ZINX__KEY_NAMED ? ZINX_EINVAL : ZINX_ENOMEM;
        if (!cJSON_AddItemToObject(obj, k->name, v)) {
            cJSON_Delete(v);
            return ZINX_ENOMEM;
        }
    }
    return 0;
}

int zinx_config_to_json(const zinx_config_t *cfg, char *buf, size_t len)
{
    if (cfg == NULL || (buf == NULL && len > 0))
        return ZINX_EINVAL;
    zinx_config_t full;
    char why[ZINX__CONFIG_WHY_LEN];
    if (zinx__config_import(&full, cfg, why, sizeof(why)) != 0)
        return ZINX_EINVAL;
    cJSON *obj = cJSON_CreateObject();
    if (obj == NULL)
        return ZINX_ENOMEM;
    int rc = fill(obj, &full);
    char *text = rc == 0 ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (rc != 0)
        return rc;
    if (text == NULL)
        return ZINX_ENOMEM;
    size_t n = strlen(text);
    if (n > (size_t)INT32_MAX) {
        cJSON_free(text);
        return ZINX_ENOMEM;
    }
    if (len > 0) {
        size_t copy = n < len - 1 ? n : len - 1;
        memcpy(buf, text, copy);
        buf[copy] = '\0';
    }
    cJSON_free(text);
    return (int)n;
}
