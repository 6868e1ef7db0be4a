/* softdpu_testing.h: test and benchmark hooks of the data plane, not part of its API.
 *
 * dataplane/build.py gives this file to cffi's cdef() apart from native/softdpu.h (the
 * production header), marked as testing-only: tests and `softdpu bench` call these; the control
 * plane does not. Like softdpu.h it must stay free of preprocessor lines and macros. */

/* Test hook: the nth vSwitch setup allocation from now on (sd_vs_enable's) fails as if out of
 * memory (0 disarms it), so tests can check that every failure leaves consistent state. */
int sd_vs_debug_fail_alloc(sd_sim *sim, uint32_t nth);

/* Benchmark: the cost of a C twin's event function: n synthetic ACK events on one flow, ns per event. */
double sd_bench_cc_twin(sd_sim *sim, uint32_t cc_param, uint32_t n);

/* Benchmark: n keys looked up reps times through the fast path (EMC, then classifier), ns per lookup. */
double sd_vs_bench_lookup(sd_sim *sim, uint32_t host, const uint32_t *keys, uint32_t n, uint32_t reps);

/* Event-queue self-test: n_ops random pushes/pops checked against (time, sequence) order;
 * 0 = pass, else the failing operation (> 0) or a final-check code (< 0). */
int sd_selftest_event_queue(uint64_t seed, uint32_t n_ops);

/* Test hook: the event loop's lookahead (prefetches only: the handlers compute everything again).
 * 0 = automatic (on once the working set passes 4 MiB), 1 = never, 2 = always. Results must not
 * depend on it; tests compare runs with 1 and 2. SD_EINVAL for another mode. */
int sd_debug_set_lookahead(sd_sim *sim, int mode);
