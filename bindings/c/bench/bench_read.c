/*
 * bench_read.c: one timed load, for bench.sh.
 *
 *   bench_read ws POLICY MODEL    every tensor through ws_model_read_tensor (open included)
 *   bench_read pread FILE PIECE   plain pread of the whole file in PIECE-byte reads
 *
 * Both allocate one buffer per read (as a loader allocating per tensor does), touch it
 * once after the read, and free it. Prints "BYTES SECONDS".
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "weightseal.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static volatile unsigned char sink;

static int bench_ws(const char *policy, const char *model) {
    char err[1024];
    double t0 = now();
    ws_model *m = ws_model_open(policy, model, NULL, err, sizeof err);
    if (!m) {
        fprintf(stderr, "open: %s\n", err);
        return 2;
    }
    uint64_t total = 0;
    for (size_t i = 0, n = ws_model_tensor_count(m); i < n; i++) {
        const char *name = ws_model_tensor_name(m, i);
        size_t len = (size_t)ws_model_tensor_len(m, name);
        unsigned char *buf = malloc(len ? len : 1);
        int rc = ws_model_read_tensor(m, name, buf, len, err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "%s: rc %d: %s\n", name, rc, err);
            return rc;
        }
        sink ^= len ? buf[len - 1] : 0;
        total += len;
        free(buf);
    }
    ws_model_close(m);
    printf("%llu %.6f\n", (unsigned long long)total, now() - t0);
    return 0;
}

static int bench_pread(const char *path, size_t piece) {
    double t0 = now();
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(path);
        return 2;
    }
    uint64_t total = 0;
    for (off_t off = 0; off < st.st_size;) {
        size_t len = (size_t)(st.st_size - off) < piece ? (size_t)(st.st_size - off) : piece;
        unsigned char *buf = malloc(len);
        for (size_t done = 0; done < len;) {
            ssize_t r = pread(fd, buf + done, len - done, off + (off_t)done);
            if (r <= 0) {
                perror("pread");
                return 2;
            }
            done += (size_t)r;
        }
        sink ^= buf[len - 1];
        total += len;
        off += (off_t)len;
        free(buf);
    }
    close(fd);
    printf("%llu %.6f\n", (unsigned long long)total, now() - t0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "ws") == 0) return bench_ws(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "pread") == 0) return bench_pread(argv[2], (size_t)atoll(argv[3]));
    fprintf(stderr, "usage: %s ws POLICY MODEL | pread FILE PIECE\n", argv[0]);
    return 2;
}
