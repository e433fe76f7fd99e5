/* Another process's CPU time and RSS: see procstat.h. */
#include "procstat.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool bots_proc_sample(int pid, bots_proc_sample_t *out)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    /* The name (field 2) may hold blanks and parentheses: fields are
       counted from the last ')'. utime and stime are fields 14 and 15,
       rss (pages) field 24. */
    char *p = strrchr(line, ')');
    unsigned long long utime, stime;
    long long rss;
    if (p == NULL ||
        sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu"
               " %*d %*d %*d %*d %*d %*d %*u %*u %lld",
               &utime, &stime, &rss) != 3)
        return false;
    long hz = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    out->cpu_s = (double)(utime + stime) / (double)(hz > 0 ? hz : 100);
    out->rss_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
    return true;
}
