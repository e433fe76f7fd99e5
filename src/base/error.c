/* Error descriptions, generated from the ZINX_ERRNO_MAP table. */
#include <string.h>

#include "zinx/error.h"

/* A negated errno outside the table still gets its system description;
   strerrordesc_np returns static text and, unlike strerror, is
   thread-safe. */
static const char *system_text(int err)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    if (err < 0) {
        const char *text = strerrordesc_np(-err);
        if (text != NULL)
            return text;
    }
#else
    (void)err;
#endif
    return "unknown error";
}

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
        return system_text(err);
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
