/*
 * gguf_load.c: a GGUF loading loop as llama.cpp would write it, with every tensor read
 * through ws_model_read_tensor, so each byte the runtime keeps was checked against the
 * signed digest as it landed in the runtime's memory (no verify-then-load race, no second
 * pass over the file).
 *
 *   cc -Ibindings/c/include bindings/c/examples/gguf_load.c -Ltarget/release -lweightseal \
 *      -Wl,-rpath,target/release -o gguf_load
 *   ./gguf_load POLICY.toml MODEL.gguf        # POLICY may be "-": $WEIGHTSEAL_POLICY
 *
 * Exit status: 0 loaded, 1 must not be loaded, 2 could not run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weightseal.h"

/* Stands in for the runtime's tensor: llama.cpp would hand buf to ggml here. */
struct tensor {
    const char *name;
    void *data;
    size_t len;
};

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s POLICY.toml|- MODEL.gguf\n", argv[0]);
        return 2;
    }
    const char *policy = strcmp(argv[1], "-") == 0 ? NULL : argv[1];
    char err[1024];

    /* Signature, trust and revocation status are decided here; no tensor byte is read. */
    ws_model *m = ws_model_open(policy, argv[2], NULL, err, sizeof err);
    if (!m) {
        fprintf(stderr, "refusing to load %s: %s\n", argv[2], err);
        return 1; /* ws_verify would tell 1 from 2; a loader only needs "not loaded" */
    }
    if (err[0]) fprintf(stderr, "%s\n", err); /* warn mode: the findings, load proceeds */

    size_t n = ws_model_tensor_count(m);
    struct tensor *tensors = calloc(n ? n : 1, sizeof *tensors);
    uint64_t total = 0, sum = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct tensor *t = &tensors[i];
        t->name = ws_model_tensor_name(m, i);
        int64_t len = ws_model_tensor_len(m, t->name); /* includes GGUF alignment padding */
        t->len = (size_t)len;
        t->data = malloc(t->len ? t->len : 1);
        if (len < 0 || !t->data) {
            fprintf(stderr, "%s: cannot allocate\n", t->name);
            rc = 2;
            break;
        }
        rc = ws_model_read_tensor(m, t->name, t->data, t->len, err, sizeof err);
        if (rc != 0) {
            /* 1: the bytes differ from the signed ones (the buffer was wiped); 2: error. */
            fprintf(stderr, "%s: %s\n", t->name, err);
            break;
        }
        if (err[0]) fprintf(stderr, "%s\n", err); /* warn mode */
        /* "Use" the tensor: the runtime would upload it; we fold it into a checksum. */
        const unsigned char *p = t->data;
        for (size_t j = 0; j < t->len; j++) sum = sum * 31 + p[j];
        total += t->len;
    }
    if (rc == 0)
        printf("loaded %zu tensors, %llu bytes, checked as read (checksum %016llx)\n", n,
               (unsigned long long)total, (unsigned long long)sum);
    for (size_t i = 0; i < n; i++) free(tensors[i].data);
    free(tensors);
    ws_model_close(m);
    return rc;
}
