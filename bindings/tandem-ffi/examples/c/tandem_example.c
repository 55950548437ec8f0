/* A C program using the Tandem C API: open two peers with their source statistics, stream raw
 * samples through them (predict, then adapt), show how errors come back, save the adapted
 * state and load it into a second engine, refuse a corrupt snapshot, refuse NULL and
 * out-of-range arguments to every function, and share one engine between two threads.
 *
 *   tandem_example PEER_A.onnx PEER_B.onnx SOURCES.tdss STREAM.f32 N STATE.snap
 *
 * STREAM.f32 holds N raw samples (little-endian float32, sample after sample). Prints one
 * line per sample: "pred INDEX CLASS CONFIDENCE AGREE ADAPTED", then "check ..." lines.
 * Exit status 0 when every check passed. Built and run by bindings/tandem-ffi/tests/c_example.rs:
 *
 *   gcc -std=c11 -Wall -Wextra -Werror -I bindings/tandem-ffi/include \
 *       bindings/tandem-ffi/examples/c/tandem_example.c target/debug/libtandem_ffi.a \
 *       -lpthread -ldl -lm -o tandem_example
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem.h"

static int failures = 0;

static void check(int ok, const char *what) {
    printf("check %s %s\n", ok ? "ok" : "FAILED", what);
    if (!ok) failures++;
}

/* Print a failed call's status and message; returns the status. */
static TandemStatus report(TandemStatus s, const char *call) {
    if (s != TANDEM_OK) {
        fprintf(stderr, "%s: %s: %s\n", call, tandem_status_name(s), tandem_last_error());
    }
    return s;
}

static unsigned char *snapshot_of(TandemEngine *e, size_t *len) {
    if (report(tandem_engine_snapshot(e, NULL, 0, len), "tandem_engine_snapshot") != TANDEM_OK) return NULL;
    unsigned char *buf = malloc(*len);
    if (buf && report(tandem_engine_snapshot(e, buf, *len, len), "tandem_engine_snapshot") != TANDEM_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Every function, with NULL where a pointer goes and out-of-range numbers: a status, never a crash. */
static void bad_arguments(TandemEngine *engine, const float *sample, size_t len, const char *sources) {
    TandemPrediction p;
    TandemCounters c;
    size_t n = 0;
    unsigned char byte = 0;
    const char *peer[1] = {NULL};
    TandemEngine *out = NULL;
    int refused = 1;
    refused &= tandem_engine_open(NULL, 1, sources, "mutual", NULL, NULL, true, &out) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_open(peer, 1, sources, "mutual", NULL, NULL, true, &out) == TANDEM_ERR_ARGUMENT && out == NULL;
    refused &= tandem_engine_open(peer, 0, sources, "mutual", NULL, NULL, true, &out) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_open(peer, SIZE_MAX, sources, "mutual", NULL, NULL, true, &out) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_open(peer, 1, sources, "mutual", NULL, NULL, true, NULL) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_run(NULL, sample, len, &p, NULL, 0) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_run(engine, NULL, len, &p, NULL, 0) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_run(engine, sample, len, NULL, NULL, 0) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_run(engine, sample, SIZE_MAX, &p, NULL, 0) == TANDEM_ERR_INPUT;
    refused &= tandem_engine_run_image(NULL, "mono8", 1, 1, 1, &byte, 1, 1.0f, &p) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_run_image(engine, NULL, 1, 1, 1, &byte, 1, 1.0f, &p) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_run_image(engine, "mono8", 1, 1, 1, NULL, 1, 1.0f, &p) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_run_image(engine, "mono8", 1, 1, 1, &byte, 1, 1.0f, NULL) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_run_image(engine, "mono8", 1, 1, 1, &byte, 1, NAN, &p) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_run_image(engine, "mono8", UINT32_MAX, UINT32_MAX, UINT32_MAX, &byte, 1, 1.0f, &p) ==
               TANDEM_ERR_INPUT;
    refused &= tandem_engine_counters(NULL, &c) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_counters(engine, NULL) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_save_state(NULL, "x.snap") == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_save_state(engine, NULL) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_load_state(NULL, "x.snap") == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_load_state(engine, NULL) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_snapshot(NULL, NULL, 0, &n) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_snapshot(engine, NULL, 0, NULL) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_snapshot(engine, &byte, 1, &n) == TANDEM_ERR_ARGUMENT && n > 1;
    refused &= tandem_engine_load_snapshot(NULL, &byte, 1) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_load_snapshot(engine, NULL, 1) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_load_snapshot(engine, &byte, 1) == TANDEM_ERR_SNAPSHOT;
    refused &= tandem_engine_adopt_merged(NULL, &byte, 1) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_adopt_merged(engine, NULL, 1) == TANDEM_ERR_ARGUMENT;
    refused &= tandem_engine_adopt_merged(engine, &byte, 1) == TANDEM_ERR_SNAPSHOT;
    check(refused, "every function refuses NULL pointers and out-of-range sizes with a status");
    check(tandem_engine_sample_len(NULL) == 0 && tandem_engine_classes(NULL) == 0 &&
              tandem_engine_fingerprint(NULL) == 0 && tandem_engine_label(NULL, 0) == NULL &&
              tandem_engine_label(engine, SIZE_MAX) == NULL && tandem_engine_label(engine, 0) != NULL,
          "the value queries answer 0 or NULL for a NULL engine or an unknown class");
    check(strcmp(tandem_status_name(-1), "TANDEM_STATUS_UNKNOWN") == 0 &&
              strcmp(tandem_status_name(12), "TANDEM_STATUS_UNKNOWN") == 0 &&
              strcmp(tandem_status_name(TANDEM_ERR_SIGNATURE), "TANDEM_ERR_SIGNATURE") == 0 &&
              strcmp(tandem_status_name(INT32_MIN), "TANDEM_STATUS_UNKNOWN") == 0 &&
              strcmp(tandem_status_name(TANDEM_ERR_BUSY), "TANDEM_ERR_BUSY") == 0,
          "tandem_status_name takes any integer");
}

/* Two threads stream through one engine at once. */
typedef struct {
    TandemEngine *engine;
    const float *stream;
    size_t len, n, ok, busy, other;
} Worker;

static void *work(void *arg) {
    Worker *w = arg;
    for (size_t i = 0; i < w->n; i++) {
        TandemPrediction p;
        TandemStatus s = tandem_engine_run(w->engine, w->stream + i * w->len, w->len, &p, NULL, 0);
        if (s == TANDEM_OK) w->ok++;
        else if (s == TANDEM_ERR_BUSY) w->busy++;
        else w->other++;
    }
    return NULL;
}

static void two_threads(TandemEngine *engine, const float *stream, size_t len, size_t n) {
    TandemCounters before, after;
    tandem_engine_counters(engine, &before);
    Worker w[2] = {{engine, stream, len, n, 0, 0, 0}, {engine, stream, len, n, 0, 0, 0}};
    pthread_t t[2];
    int started = pthread_create(&t[0], NULL, work, &w[0]) == 0 && pthread_create(&t[1], NULL, work, &w[1]) == 0;
    if (started) {
        pthread_join(t[0], NULL);
        pthread_join(t[1], NULL);
    }
    tandem_engine_counters(engine, &after);
    printf("threads: %zu + %zu runs, %zu + %zu busy\n", w[0].ok, w[1].ok, w[0].busy, w[1].busy);
    check(started && w[0].other == 0 && w[1].other == 0 && w[0].ok + w[0].busy == n && w[1].ok + w[1].busy == n,
          "two threads on one engine: every call runs or is refused as busy");
    check(after.samples_seen - before.samples_seen == w[0].ok + w[1].ok,
          "the engine counted exactly the calls that ran");
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s PEER_A PEER_B SOURCES STREAM.f32 N STATE\n", argv[0]);
        return 2;
    }
    const char *peers[2] = {argv[1], argv[2]};
    const char *sources = argv[3], *stream_path = argv[4], *state = argv[6];
    size_t n = (size_t)strtoul(argv[5], NULL, 10);
    printf("tandem %s\n", tandem_version());

    /* Errors come back as a status plus a message. */
    TandemEngine *bad = NULL;
    const char *missing[1] = {"no/such/peer.onnx"};
    TandemStatus s = tandem_engine_open(missing, 1, sources, "mutual", NULL, NULL, true, &bad);
    printf("error %s: %s\n", tandem_status_name(s), tandem_last_error());
    check(s == TANDEM_ERR_IO && bad == NULL, "a missing model is TANDEM_ERR_IO");
    s = tandem_engine_open(peers, 2, sources, "no-such-method", NULL, NULL, true, &bad);
    check(s == TANDEM_ERR_ARGUMENT && strlen(tandem_last_error()) > 0, "an unknown method is TANDEM_ERR_ARGUMENT");

    TandemEngine *engine = NULL;
    if (report(tandem_engine_open(peers, 2, sources, "mutual", NULL, NULL, true, &engine), "tandem_engine_open") != TANDEM_OK) return 1;
    size_t len = tandem_engine_sample_len(engine), classes = tandem_engine_classes(engine);
    printf("engine: %zu values per sample, %zu classes (%s .. %s), fingerprint %08x\n", len, classes,
           tandem_engine_label(engine, 0), tandem_engine_label(engine, classes - 1),
           (unsigned)tandem_engine_fingerprint(engine));

    FILE *f = fopen(stream_path, "rb");
    if (!f) {
        perror(stream_path);
        return 1;
    }
    float *stream = malloc(n * len * sizeof(float));
    if (!stream || fread(stream, sizeof(float), n * len, f) != n * len) {
        fprintf(stderr, "%s: expected %zu samples of %zu floats\n", stream_path, n, len);
        return 1;
    }
    fclose(f);

    float *probs = malloc(classes * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        TandemPrediction p;
        if (report(tandem_engine_run(engine, stream + i * len, len, &p, probs, classes), "tandem_engine_run") != TANDEM_OK)
            return 1;
        printf("pred %zu %d %.6f %d %d\n", i, p.class_id, p.confidence, p.peers_agree, p.adapted);
        if (fabsf(probs[p.class_id] - p.confidence) > 1e-6f) check(0, "probabilities match the confidence");
    }

    /* Bad input is refused and changes nothing. */
    TandemCounters before, after;
    tandem_engine_counters(engine, &before);
    float *nan_sample = malloc(len * sizeof(float));
    memcpy(nan_sample, stream, len * sizeof(float));
    nan_sample[len / 2] = NAN;
    TandemPrediction p;
    check(tandem_engine_run(engine, nan_sample, len, &p, NULL, 0) == TANDEM_ERR_NON_FINITE, "a NaN sample is refused");
    check(tandem_engine_run(engine, stream, len - 1, &p, NULL, 0) == TANDEM_ERR_INPUT, "a short sample is refused");
    unsigned char bogus_image[3] = {1, 2, 3};
    check(tandem_engine_run_image(engine, "rgb16", 1, 1, 6, bogus_image, 3, 1.0f, &p) == TANDEM_ERR_INPUT,
          "an unsupported encoding is refused");
    check(tandem_engine_run(NULL, stream, len, &p, NULL, 0) == TANDEM_ERR_ARGUMENT, "a NULL engine is refused");
    tandem_engine_counters(engine, &after);
    check(after.samples_seen == before.samples_seen, "refused inputs are not counted as seen");
    printf("counters: seen %u adapted %u pseudo-labels %u checkpoints %u rollbacks %u\n", after.samples_seen,
           after.samples_adapted, after.pseudo_labels, after.checkpoints, after.rollbacks);

    /* The adapted state survives a restart: save, load into a fresh engine, compare. */
    if (report(tandem_engine_save_state(engine, state), "tandem_engine_save_state") != TANDEM_OK) return 1;
    TandemEngine *restarted = NULL;
    if (report(tandem_engine_open(peers, 2, sources, "mutual", NULL, NULL, true, &restarted), "tandem_engine_open") != TANDEM_OK) return 1;
    if (report(tandem_engine_load_state(restarted, state), "tandem_engine_load_state") != TANDEM_OK) return 1;
    size_t a_len = 0, b_len = 0;
    unsigned char *a = snapshot_of(engine, &a_len), *b = snapshot_of(restarted, &b_len);
    check(a && b && a_len == b_len && memcmp(a, b, a_len) == 0, "the restored state equals the saved one");
    TandemPrediction pa, pb;
    tandem_engine_run(engine, stream, len, &pa, NULL, 0);
    tandem_engine_run(restarted, stream, len, &pb, NULL, 0);
    check(pa.class_id == pb.class_id && pa.confidence == pb.confidence, "both engines predict alike after a restart");

    /* A corrupt snapshot is refused and the state stays as it was. */
    size_t c_len = 0;
    unsigned char *c = snapshot_of(restarted, &c_len);
    c[c_len / 2] ^= 0x5a;
    s = tandem_engine_load_snapshot(restarted, c, c_len);
    printf("error %s: %s\n", tandem_status_name(s), tandem_last_error());
    check(s == TANDEM_ERR_SNAPSHOT, "a corrupt snapshot is TANDEM_ERR_SNAPSHOT");
    size_t d_len = 0;
    unsigned char *d = snapshot_of(restarted, &d_len);
    c[c_len / 2] ^= 0x5a;
    /* The header (32 bytes) carries a sequence number and the last 4 bytes a CRC over it:
     * compare the payload. */
    check(d && d_len == c_len && memcmp(c + 32, d + 32, c_len - 36) == 0, "the refused snapshot changed nothing");

    bad_arguments(engine, stream, len, sources);
    two_threads(engine, stream, len, n);

    free(a);
    free(b);
    free(c);
    free(d);
    free(nan_sample);
    free(probs);
    free(stream);
    tandem_engine_free(restarted);
    tandem_engine_free(engine);
    tandem_engine_free(NULL);
    printf("%d checks failed\n", failures);
    return failures == 0 ? 0 : 1;
}
