# bench/bench.mk - micro-benchmarks (included by the main Makefile).
#
#   make bench                          build both benchmarks and run bench/run.sh
#   BENCH_DIR_PAIRS=100000 make bench   a smaller directory for dir_bench (CI)
#
# Only the benchmark links GMime, as the peer it is compared with; the product never does.

GMIME_CFLAGS := $(shell pkg-config --cflags gmime-3.0 2>/dev/null)
GMIME_LIBS   := $(shell pkg-config --libs gmime-3.0 2>/dev/null)
BENCH_COMMON := $(B)/rel/bench/bench_util.o

.PHONY: bench bench-build
bench-build: $(B)/bin/rewrite_bench $(B)/bin/dir_bench

bench: bench-build
	./bench/run.sh

# GMime's headers are only seen by this object
$(B)/rel/bench/rewrite_bench.o: ALL_CFLAGS += $(GMIME_CFLAGS)

$(B)/bin/rewrite_bench: $(B)/rel/bench/rewrite_bench.o $(BENCH_COMMON) $(REL_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(GMIME_LIBS)

$(B)/bin/dir_bench: $(B)/rel/bench/dir_bench.o $(BENCH_COMMON) $(REL_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS)
