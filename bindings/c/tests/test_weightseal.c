/*
 * test_weightseal.c: the C library's scenarios, run by bindings/c/ci.sh (also under valgrind).
 *
 *   test_weightseal FIXTURES
 *
 * FIXTURES is the folder ci.sh prepares (see gen_fixtures there): keys, signed copies of
 * the fixture models, tampered / unsigned / revoked variants, and the policy files named
 * below. Revocation cases need the live weightseal-server ci.sh starts; set
 * WS_SKIP_REVOCATION=1 to skip them. Prints one line per check and "N passed, M failed".
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weightseal.h"

static int passed, failed;
static const char *root;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (cond) {                                                                        \
            passed++;                                                                      \
        } else {                                                                           \
            failed++;                                                                      \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                         \
            printf(__VA_ARGS__);                                                           \
            printf("\n");                                                                  \
        }                                                                                  \
    } while (0)

/* FIXTURES/rel in a static buffer ring (a few live at once). */
static const char *at(const char *rel) {
    static char ring[8][4096];
    static int next;
    char *p = ring[next++ % 8];
    snprintf(p, sizeof ring[0], "%s/%s", root, rel);
    return p;
}

static int verify(const char *policy, const char *model, char *err, size_t len) {
    return ws_verify(policy ? at(policy) : NULL, model ? at(model) : NULL, NULL, err, len);
}

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Reads every tensor of an open model; returns how many returned 0, and counts the others. */
static size_t read_all(ws_model *m, size_t *mismatches, size_t *errors) {
    size_t ok = 0, n = ws_model_tensor_count(m);
    char err[512];
    *mismatches = *errors = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = ws_model_tensor_name(m, i);
        int64_t len = ws_model_tensor_len(m, name);
        unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
        int rc = ws_model_read_tensor(m, name, buf, (size_t)len, err, sizeof err);
        if (rc == 0) ok++;
        else if (rc == 1) (*mismatches)++;
        else (*errors)++;
        free(buf);
    }
    return ok;
}

static void test_version(void) {
    const char *v = ws_version();
    CHECK(v && v[0] >= '0' && v[0] <= '9', "version %s", v ? v : "(null)");
}

static void test_verified(void) {
    char err[1024];
    int rc = verify("enforce.toml", "ok/base-model", err, sizeof err);
    CHECK(rc == 0, "verified folder: rc %d: %s", rc, err);
    rc = verify("enforce.toml", "ok/tiny-llama.gguf", err, sizeof err);
    CHECK(rc == 0, "verified gguf: rc %d: %s", rc, err);

    ws_model *m = ws_model_open(at("enforce.toml"), at("ok/base-model"), NULL, err, sizeof err);
    CHECK(m != NULL, "open verified: %s", err);
    if (!m) return;
    size_t n = ws_model_tensor_count(m), bad, errs;
    CHECK(n > 1, "tensor count %zu", n);
    CHECK(read_all(m, &bad, &errs) == n && bad == 0 && errs == 0, "read all: %zu mismatch %zu error", bad, errs);
    CHECK(ws_model_warning_count(m) == 0, "no warnings in enforce mode");
    CHECK(ws_model_tensor_name(m, n) == NULL, "name past the end is NULL");
    ws_model_close(m);

    /* One shard of the signed folder: the folder's signature is found by walking up, and
       only that shard's tensors are listed (and read). */
    const char *shard = "ok/base-model/model-00001-of-00002.safetensors";
    rc = verify("enforce.toml", shard, err, sizeof err);
    CHECK(rc == 0, "verified shard: rc %d: %s", rc, err);
    m = ws_model_open(at("enforce.toml"), at(shard), NULL, err, sizeof err);
    CHECK(m != NULL, "open shard: %s", err);
    if (!m) return;
    size_t in_shard = ws_model_tensor_count(m);
    CHECK(in_shard > 0 && in_shard < n, "the shard lists %zu of the folder's %zu tensors", in_shard, n);
    CHECK(read_all(m, &bad, &errs) == in_shard && bad == 0 && errs == 0, "read the shard: %zu/%zu", bad, errs);
    ws_model_close(m);
}

static void test_tampered(void) {
    char err[1024], tensor[512] = {0};
    FILE *f = fopen(at("tampered/TENSOR"), "r");
    CHECK(f && fgets(tensor, sizeof tensor, f), "tampered/TENSOR readable");
    if (f) fclose(f);
    tensor[strcspn(tensor, "\n")] = 0;

    int rc = verify("enforce.toml", "tampered/base-model", err, sizeof err);
    CHECK(rc == 1, "tampered: ws_verify rc %d: %s", rc, err);
    CHECK(strstr(err, tensor) != NULL, "the message names the tensor %s: %s", tensor, err);

    ws_model *m = ws_model_open(at("enforce.toml"), at("tampered/base-model"), NULL, err, sizeof err);
    CHECK(m != NULL, "open tampered (no bytes read yet): %s", err);
    if (!m) return;
    size_t n = ws_model_tensor_count(m), ok = 0, flipped = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = ws_model_tensor_name(m, i);
        int64_t len = ws_model_tensor_len(m, name);
        unsigned char *buf = malloc((size_t)len);
        memset(buf, 0xAB, (size_t)len);
        rc = ws_model_read_tensor(m, name, buf, (size_t)len, err, sizeof err);
        if (strcmp(name, tensor) == 0) {
            flipped++;
            CHECK(rc == 1, "flipped tensor %s: rc %d: %s", name, rc, err);
            CHECK(all_zero(buf, (size_t)len), "flipped tensor's buffer is wiped");
        } else {
            ok += rc == 0;
            if (rc != 0) printf("  other tensor %s: rc %d: %s\n", name, rc, err);
        }
        free(buf);
    }
    CHECK(flipped == 1, "the flipped tensor %s was listed", tensor);
    CHECK(ok == n - 1, "the %zu other tensors read 0 (%zu did)", n - 1, ok);
    ws_model_close(m);
}

static void test_refusals(void) {
    char err[1024];
    int rc = verify("enforce.toml", "unsigned/base-model", err, sizeof err);
    CHECK(rc == 1, "unsigned file beside the weights: rc %d: %s", rc, err);
    CHECK(strstr(err, "modeling_custom.py") != NULL, "names the unsigned file: %s", err);
    ws_model *m = ws_model_open(at("enforce.toml"), at("unsigned/base-model"), NULL, err, sizeof err);
    CHECK(m == NULL, "open refuses an unsigned file beside the weights");
    ws_model_close(m);

    rc = verify("wrongkey.toml", "ok/base-model", err, sizeof err);
    CHECK(rc == 1, "wrong key: rc %d: %s", rc, err);
    m = ws_model_open(at("wrongkey.toml"), at("ok/base-model"), NULL, err, sizeof err);
    CHECK(m == NULL && err[0] != 0, "open refuses a wrong key: %s", err);

    rc = verify("threshold.toml", "ok/base-model", err, sizeof err);
    CHECK(rc == 1, "threshold not met: rc %d: %s", rc, err);
    m = ws_model_open(at("threshold.toml"), at("ok/base-model"), NULL, err, sizeof err);
    CHECK(m == NULL, "open refuses when the threshold is not met");
}

static void test_revocation(void) {
    char err[1024];
    if (getenv("WS_SKIP_REVOCATION")) {
        printf("skipped: revocation cases (WS_SKIP_REVOCATION)\n");
        return;
    }
    int rc = verify("revocations.toml", "ok/base-model", err, sizeof err);
    CHECK(rc == 0, "live server, not revoked: rc %d: %s", rc, err);
    rc = verify("revocations.toml", "revoked/base-model", err, sizeof err);
    CHECK(rc == 1, "live server, revoked manifest: rc %d: %s", rc, err);
    CHECK(strstr(err, "revoked") != NULL, "the message says revoked: %s", err);
    ws_model *m = ws_model_open(at("revocations.toml"), at("revoked/base-model"), NULL, err, sizeof err);
    CHECK(m == NULL, "open refuses a revoked manifest");
    m = ws_model_open(at("revocations.toml"), at("ok/base-model"), NULL, err, sizeof err);
    CHECK(m != NULL, "open accepts the model that is not revoked: %s", err);
    ws_model_close(m);

    /* A model nobody signed: refused by default; with unsigned_models = "check-revocations"
       the decision lets it load once its content is not revoked, and ws_model_open has no
       manifest to read against. */
    rc = verify("revocations.toml", "nosig/base-model", err, sizeof err);
    CHECK(rc == 1, "unsigned model refused: rc %d: %s", rc, err);
    rc = verify("unsigned-models.toml", "nosig/base-model", err, sizeof err);
    CHECK(rc == 0, "unsigned model checked against revocations: rc %d: %s", rc, err);
    m = ws_model_open(at("unsigned-models.toml"), at("nosig/base-model"), NULL, err, sizeof err);
    CHECK(m == NULL && strstr(err, "check-revocations"), "open: no manifest to read against: %s", err);
    ws_model_close(m);

    rc = verify("unknown.toml", "ok/base-model", err, sizeof err);
    CHECK(rc == 1, "revocation status unknown: rc %d: %s", rc, err);
    m = ws_model_open(at("unknown.toml"), at("ok/base-model"), NULL, err, sizeof err);
    CHECK(m == NULL, "open refuses on unknown revocation status");

    rc = verify("warn-unknown.toml", "ok/base-model", err, sizeof err);
    CHECK(rc == 0, "warn mode, status unknown: rc %d: %s", rc, err);
    CHECK(strstr(err, "warning") != NULL, "warn mode reports the finding: %s", err);
}

static void test_warn(void) {
    char err[2048];
    int rc = verify("warn.toml", "ok/base-model", err, sizeof err);
    CHECK(rc == 0, "warn mode, wrong key: rc %d: %s", rc, err);
    CHECK(strstr(err, "warning") != NULL, "warn mode reports the finding: %s", err);

    rc = verify("warn-lab.toml", "tampered/base-model", err, sizeof err);
    CHECK(rc == 0, "warn mode, tampered: rc %d: %s", rc, err);
    CHECK(strstr(err, "warning") != NULL, "warn mode reports the tamper: %s", err);

    ws_model *m = ws_model_open(at("warn-lab.toml"), at("tampered/base-model"), NULL, err, sizeof err);
    CHECK(m != NULL, "warn mode opens the tampered model: %s", err);
    if (!m) return;
    size_t bad, errs, n = ws_model_tensor_count(m);
    CHECK(read_all(m, &bad, &errs) == n && errs == 0, "warn mode reads every tensor (%zu errors)", errs);
    CHECK(ws_model_warning_count(m) >= 1, "the tamper is in the warning list");
    char w[1024];
    CHECK(ws_model_warning(m, 0, w, sizeof w) == 0 && w[0], "warning 0: %s", w);
    CHECK(ws_model_warning(m, 99, w, sizeof w) == 2 && w[0] == 0, "warning out of range");
    ws_model_close(m);
}

/* ws_model_open_ex: the decision's code beside the handle. */
static void test_open_ex(void) {
    char err[1024];
    ws_model *m = (ws_model *)&m; /* any non-NULL value: it must be overwritten */
    int rc = ws_model_open_ex(at("enforce.toml"), at("ok/base-model"), NULL, &m, err, sizeof err);
    CHECK(rc == 0 && m != NULL && ws_model_tensor_count(m) > 0, "open_ex verified: rc %d: %s", rc, err);
    ws_model_close(m);
    m = (ws_model *)&m;
    rc = ws_model_open_ex(at("wrongkey.toml"), at("ok/base-model"), NULL, &m, err, sizeof err);
    CHECK(rc == 1 && m == NULL, "open_ex wrong key: rc %d: %s", rc, err);
    rc = ws_model_open_ex(at("enforce.toml"), at("unsigned/base-model"), NULL, &m, err, sizeof err);
    CHECK(rc == 1 && m == NULL, "open_ex unsigned file beside the weights: rc %d: %s", rc, err);
    /* Warn mode without a trusted signature: allowed, nothing to read through. */
    rc = ws_model_open_ex(at("warn.toml"), at("ok/base-model"), NULL, &m, err, sizeof err);
    CHECK(rc == 0 && m == NULL && strstr(err, "warning"), "open_ex warn, wrong key: rc %d: %s", rc, err);
    rc = ws_model_open_ex(at("no-such-policy.toml"), at("ok/base-model"), NULL, &m, err, sizeof err);
    CHECK(rc == 2 && m == NULL, "open_ex missing policy: rc %d: %s", rc, err);
    rc = ws_model_open_ex(at("enforce.toml"), at("ok/base-model"), NULL, NULL, err, sizeof err);
    CHECK(rc == 2, "open_ex out NULL: rc %d: %s", rc, err);
    if (!getenv("WS_SKIP_REVOCATION")) {
        rc = ws_model_open_ex(at("unsigned-models.toml"), at("nosig/base-model"), NULL, &m, err, sizeof err);
        CHECK(rc == 0 && m == NULL, "open_ex unsigned model let through: rc %d: %s", rc, err);
        rc = ws_model_open_ex(at("revocations.toml"), at("revoked/base-model"), NULL, &m, err, sizeof err);
        CHECK(rc == 1 && m == NULL, "open_ex revoked: rc %d: %s", rc, err);
    }
}

static void test_bad_arguments(void) {
    char err[1024];
    int rc = ws_verify(at("enforce.toml"), NULL, NULL, err, sizeof err);
    CHECK(rc == 2, "NULL model: rc %d: %s", rc, err);
    rc = verify("no-such-policy.toml", "ok/base-model", err, sizeof err);
    CHECK(rc == 2, "missing policy file: rc %d: %s", rc, err);
    rc = verify("missingkey.toml", "ok/base-model", err, sizeof err);
    CHECK(rc == 2, "missing trusted key file: rc %d: %s", rc, err);
    /* A model path with nothing there has no signature either: must not be loaded (1), as
       `weightseal verify` answers; the decision, not the binding, says so. */
    rc = verify("enforce.toml", "no-such-model", err, sizeof err);
    CHECK(rc == 1, "missing model: rc %d: %s", rc, err);
    rc = verify("bad.toml", "ok/base-model", err, sizeof err);
    CHECK(rc == 2, "invalid policy file: rc %d: %s", rc, err);
    rc = ws_verify(at("enforce.toml"), "\xff\xfe", NULL, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "UTF-8"), "invalid UTF-8: rc %d: %s", rc, err);

    /* policy NULL: $WEIGHTSEAL_POLICY */
    unsetenv("WEIGHTSEAL_POLICY");
    rc = ws_verify(NULL, at("ok/base-model"), NULL, err, sizeof err);
    CHECK(rc == 2, "no policy and no $WEIGHTSEAL_POLICY: rc %d: %s", rc, err);
    setenv("WEIGHTSEAL_POLICY", at("enforce.toml"), 1);
    rc = ws_verify(NULL, at("ok/base-model"), NULL, err, sizeof err);
    CHECK(rc == 0, "policy from $WEIGHTSEAL_POLICY: rc %d: %s", rc, err);
    setenv("WEIGHTSEAL_POLICY", at("wrongkey.toml"), 1);
    rc = ws_verify(NULL, at("ok/base-model"), NULL, err, sizeof err);
    CHECK(rc == 1, "refusal under $WEIGHTSEAL_POLICY: rc %d: %s", rc, err);
    unsetenv("WEIGHTSEAL_POLICY");

    /* An explicit signature path. */
    rc = ws_verify(at("enforce.toml"), at("ok/tiny-llama.gguf"), at("ok/tiny-llama.gguf.weightseal.sig"), err,
                   sizeof err);
    CHECK(rc == 0, "explicit signature path: rc %d: %s", rc, err);

    /* Error buffers: truncated, always NUL-terminated; NULL and 0 are fine. */
    char small[8];
    memset(small, 'x', sizeof small);
    rc = verify("wrongkey.toml", "ok/base-model", small, sizeof small);
    CHECK(rc == 1 && strlen(small) == sizeof small - 1, "truncated to %zu: %s", sizeof small - 1, small);
    small[0] = 'x';
    rc = verify("wrongkey.toml", "ok/base-model", small, 1);
    CHECK(rc == 1 && small[0] == 0, "err_len 1 gets just the NUL");
    small[0] = 'x';
    rc = verify("wrongkey.toml", "ok/base-model", small, 0);
    CHECK(rc == 1 && small[0] == 'x', "err_len 0 is not written");
    CHECK(verify("wrongkey.toml", "ok/base-model", NULL, 64) == 1, "err NULL");

    ws_model *m = ws_model_open(at("enforce.toml"), NULL, NULL, err, sizeof err);
    CHECK(m == NULL && err[0], "open with NULL model: %s", err);
    m = ws_model_open(at("enforce.toml"), at("ok/base-model"), NULL, NULL, 0);
    CHECK(m != NULL, "open with no err buffer");
    if (m) {
        CHECK(ws_model_tensor_len(m, "no.such.tensor") == -1, "unknown tensor len -1");
        CHECK(ws_model_tensor_len(m, NULL) == -1, "NULL name len -1");
        CHECK(ws_model_tensor_len(m, "\xff") == -1, "invalid UTF-8 name len -1");
        const char *name = ws_model_tensor_name(m, 0);
        int64_t len = ws_model_tensor_len(m, name);
        unsigned char *buf = malloc((size_t)len + 1);
        rc = ws_model_read_tensor(m, name, buf, (size_t)len + 1, err, sizeof err);
        CHECK(rc == 2, "wrong buffer size: rc %d: %s", rc, err);
        memset(buf, 0xAB, (size_t)len);
        rc = ws_model_read_tensor(m, name, buf, (size_t)len - 1, err, sizeof err);
        CHECK(rc == 2, "short buffer: rc %d: %s", rc, err);
        CHECK(all_zero(buf, (size_t)len - 1), "an error wipes the buffer too");
        rc = ws_model_read_tensor(m, name, NULL, (size_t)len, err, sizeof err);
        CHECK(rc == 2, "NULL buffer: rc %d: %s", rc, err);
        rc = ws_model_read_tensor(m, "no.such.tensor", buf, (size_t)len, err, sizeof err);
        CHECK(rc == 2, "unknown tensor: rc %d: %s", rc, err);
        rc = ws_model_read_tensor(m, NULL, buf, (size_t)len, err, sizeof err);
        CHECK(rc == 2, "NULL name: rc %d: %s", rc, err);
        rc = ws_model_read_tensor(m, name, buf, (size_t)len, NULL, 0);
        CHECK(rc == 0, "read with no err buffer: rc %d", rc);
        free(buf);
        ws_model_close(m);
    }
    unsigned char one[1];
    rc = ws_model_read_tensor(NULL, "x", one, 1, err, sizeof err);
    CHECK(rc == 2, "NULL model handle: rc %d", rc);
    CHECK(ws_model_tensor_count(NULL) == 0, "count of NULL");
    CHECK(ws_model_tensor_name(NULL, 0) == NULL, "name of NULL");
    CHECK(ws_model_tensor_len(NULL, "x") == -1, "len of NULL");
    CHECK(ws_model_warning_count(NULL) == 0, "warnings of NULL");
    ws_model_close(NULL);
}

/* Two threads reading all tensors through one handle at once. */
static void *reader(void *arg) {
    size_t bad, errs, n = ws_model_tensor_count(arg);
    size_t ok = read_all(arg, &bad, &errs);
    return (void *)(uintptr_t)(ok == n && bad == 0 && errs == 0);
}

static void test_threads(void) {
    char err[1024];
    ws_model *m = ws_model_open(at("enforce.toml"), at("ok/tiny-llama.gguf"), NULL, err, sizeof err);
    CHECK(m != NULL, "open gguf: %s", err);
    if (!m) return;
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, reader, m);
    for (int i = 0; i < 4; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        CHECK(ok, "thread %d read every tensor", i);
    }
    ws_model_close(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURES\n", argv[0]);
        return 2;
    }
    root = argv[1];
    test_version();
    test_verified();
    test_tampered();
    test_refusals();
    test_warn();
    test_revocation();
    test_open_ex();
    test_bad_arguments();
    test_threads();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
