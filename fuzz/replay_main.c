/*
 * Replays fuzz inputs without libFuzzer: calls LLVMFuzzerTestOneInput()
 * once for every file named on the command line and for every file in
 * every directory named (recursively, in name order). This is how ctest
 * runs the committed corpus in every build, and how a reproducer is
 * re-run under gdb, valgrind or TSan.
 *
 *   fuzz_decoder_replay fuzz/corpus/fuzz_decoder crash-1234
 *
 * Each file's name is printed before it runs, so the last name printed
 * before a failure is the input that failed. Exits 0 when every input
 * ran, 1 on a usage or read error or when no input was found.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define PATH_CAP 4096

typedef struct replay {
    size_t inputs;
    int errors;
} replay_t;

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    int err = ferror(f) ? -EIO : 0;
    fclose(f);
    if (buf == NULL)
        return -ENOMEM;
    if (err != 0) {
        free(buf);
        return err;
    }
    /* An exact-size copy: a read past the input's end must be caught. */
    uint8_t *exact = malloc(n > 0 ? n : 1);
    if (exact == NULL) {
        free(buf);
        return -ENOMEM;
    }
    memcpy(exact, buf, n);
    free(buf);
    *out = exact;
    *len = n;
    return 0;
}

static void run_file(replay_t *r, const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = read_file(path, &data, &len);
    if (rc != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(-rc));
        r->errors++;
        return;
    }
    printf("replay: %s (%zu bytes)\n", path, len);
    fflush(stdout);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    r->inputs++;
}

static int skip_entry(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static void run_path(replay_t *r, const char *path);

static void run_dir(replay_t *r, const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, skip_entry, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        r->errors++;
        return;
    }
    for (int i = 0; i < n; i++) {
        char path[PATH_CAP];
        int w = snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (w < 0 || (size_t)w >= sizeof(path)) {
            fprintf(stderr, "replay: path too long in %s\n", dir);
            r->errors++;
        } else {
            run_path(r, path);
        }
        free(names[i]);
    }
    free(names);
}

static void run_path(replay_t *r, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        r->errors++;
    } else if (S_ISDIR(st.st_mode)) {
        run_dir(r, path);
    } else {
        run_file(r, path);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 1;
    }
    replay_t r = {0, 0};
    for (int i = 1; i < argc; i++)
        run_path(&r, argv[i]);
    printf("replay: %zu inputs ran, %d errors\n", r.inputs, r.errors);
    if (r.inputs == 0) {
        fprintf(stderr, "replay: no input found\n");
        return 1;
    }
    return r.errors == 0 ? 0 : 1;
}
