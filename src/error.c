/* Error descriptions, generated from the ZINX_ERRNO_MAP table. */
#include "zinx/error.h"

const char *zinx_strerror(int err)
{
    switch (err) {
#define ZINX__ERR_TEXT(name, value, text) \
    case (value):                         \
        return (text);
        ZINX_ERRNO_MAP(ZINX__ERR_TEXT)
#undef ZINX__ERR_TEXT
    case 0:
        return "success";
    default:
        return "unknown error";
    }
}

const char *zinx_err_name(int err)
{
    switch (err) {
#define ZINX__ERR_NAME(name, value, text) \
    case (value):                         \
        return "ZINX_" #name;
        ZINX_ERRNO_MAP(ZINX__ERR_NAME)
#undef ZINX__ERR_NAME
    default:
        return "ZINX_UNKNOWN";
    }
}
