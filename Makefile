# coex - build, test, run, bench, fuzz.  See README.md.
#
#   make            build bin/coexctl (and later bin/coexd) into build/
#   make test       unit tests (plain and ASan+UBSan), CLI tests, bounded fuzzing, lint
#   make run        the main job (see README.md)
#   make bench      micro-benchmarks (bench/)
#   make fuzz       fuzz every target for FUZZ_SECONDS (default 60) each

SHELL   := /bin/bash
CC      ?= cc
CLANG   ?= clang
PKGS    := sqlite3 libevent libevent_openssl libevent_pthreads openssl
CSTD    := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
WARN    := -Wall -Wextra -Wstrict-prototypes -Wformat=2 -Werror
INC     := -Isrc/core -Isrc/mail -Isrc/dir -Isrc/queue -Isrc/smtp
CFLAGS  ?= -O2 -g
ALL_CFLAGS = $(CSTD) $(WARN) $(INC) $(CFLAGS) $(shell pkg-config --cflags $(PKGS)) -MMD -MP
LIBS    := $(shell pkg-config --libs $(PKGS)) -lpthread
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_SECONDS ?= 60

B   := build
LIB_SRCS := $(wildcard src/core/*.c src/mail/*.c src/dir/*.c src/queue/*.c src/smtp/*.c)
UNIT_TESTS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
CTL_SRCS := $(wildcard src/cmd/coexctl*.c)

FUZZ_SRCS := $(wildcard src/core/*.c src/mail/*.c) src/dir/dir.c
FUZZ_SRCS += src/smtp/smtpproto.c src/smtp/smtpproto_data.c src/smtp/smtpreply.c
REL_OBJS := $(LIB_SRCS:%.c=$(B)/rel/%.o)
SAN_OBJS := $(LIB_SRCS:%.c=$(B)/san/%.o)

.SECONDARY:
.PHONY: all test unit unit-san cli fuzz fuzz-build lint run demo clean deps
all: $(B)/bin/coexctl $(B)/bin/coexd

$(B)/rel/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(INC) $(SANFLAGS) $(shell pkg-config --cflags $(PKGS)) -MMD -MP -c $< -o $@

$(B)/bin/coexctl: $(CTL_SRCS:%.c=$(B)/rel/%.o) $(REL_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

$(B)/bin/coexd: $(B)/rel/src/cmd/coexd.o $(REL_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

$(B)/san/bin/coexd: $(B)/san/src/cmd/coexd.o $(SAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS)

$(B)/san/bin/coexctl: $(CTL_SRCS:%.c=$(B)/san/%.o) $(SAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS)

# unit tests: cmocka, one binary per module, in both builds
$(B)/rel/tests/%: $(B)/rel/tests/unit/%.o $(REL_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(shell pkg-config --libs cmocka)

$(B)/san/tests/%: $(B)/san/tests/unit/%.o $(SAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS) $(shell pkg-config --libs cmocka)

unit: $(UNIT_TESTS:%=$(B)/rel/tests/%)
	@set -e; for t in $^; do echo "== $$t"; (cd tests/unit && ../../$$t); done

unit-san: $(UNIT_TESTS:%=$(B)/san/tests/%)
	@set -e; for t in $^; do echo "== $$t (asan+ubsan)"; (cd tests/unit && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ../../$$t); done

# integration tests drive the real coexctl and coexd (the sanitizer builds) with pytest
cli: $(B)/bin/coexctl $(B)/san/bin/coexctl $(B)/san/bin/coexd
	COEXCTL=$(CURDIR)/$(B)/san/bin/coexctl COEX_BUILD=$(CURDIR)/$(B)/san/bin \
	    /usr/bin/python3 -m pytest -q tests/integration

# fuzzing: clang libFuzzer + ASan/UBSan over the pure mail code
$(B)/fuzz/%: tests/fuzz/%.c $(FUZZ_SRCS)
	@mkdir -p $(dir $@)
	$(CLANG) $(CSTD) $(INC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	    -o $@ $< $(FUZZ_SRCS) -lcrypto

fuzz-build: $(FUZZ_TARGETS:%=$(B)/fuzz/%)

fuzz: fuzz-build
	@set -e -o pipefail; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(B)/fuzz/corpus-$$t; \
	    echo "== $$t for $(FUZZ_SECONDS)s"; \
	    $(B)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	        -print_final_stats=1 $(B)/fuzz/corpus-$$t tests/fuzz/corpus/$${t#fuzz_} 2>&1 | tail -n 12; \
	done

# banned functions (STYLE.md), like curl's checksrc
lint:
	@! grep -rnE '\b(sprintf|strcpy|strcat|strtok|atoi|gets)\s*\(' src tests/unit tests/fuzz bench --include='*.c' --include='*.h' \
	    || (echo "lint: banned function (see STYLE.md)"; exit 1)
	@echo "lint: ok"

test: deps
	$(MAKE) lint unit unit-san cli fuzz
	@echo "all tests passed"

deps:
	./scripts/install-deps.sh

run: deps
	$(MAKE) all
	./scripts/run.sh

# the offline rewrite of the sample message (coexctl rewrite)
demo: all
	./scripts/demo.sh

# `make bench` and the benchmark binaries are defined in bench/bench.mk
-include bench/bench.mk

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
