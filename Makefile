# storaged - the only build system. See README.md.
#
#   make            build storaged, storagectl, the front-end modules,
#                   libstoraged (client library) and stor (client tools)
#   make run        install deps, build, run the daemon with ./storaged.conf
#   make test       install deps, build, unit tests (plain + ASan/UBSan),
#                   integration tests against the real daemon (and one
#                   run against the ASan/UBSan daemon, integration-asan)
#   make asan       the daemon and its modules under ASan/UBSan:
#                   build/asan/storaged, build/asan/frontends/*.so
#   make test-backends  the S3/RADOS blob stores against a Ceph cluster the
#                   test starts (minutes; not part of make test)
#   make test-browser  the web client end to end in headless chromium
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean

PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
MODDIR     ?= $(LIBDIR)/storaged
SYSCONFDIR ?= $(PREFIX)/etc
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share/storaged
VERSION    := 0.1.0

CC      ?= cc
PKGS    := sqlite3 libsodium libcrypto inih libcurl
# CFLAGS from the command line (make all CFLAGS="-O1 -fsanitize=...")
# replace only the optimisation and debug flags: the project's own flags
# below are always added (override), so a sanitizer build keeps -Werror,
# -fPIC, -pthread and the include paths.
CFLAGS  ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC -pthread \
           -I. -Icore -Iutil $(shell pkg-config --cflags $(PKGS)) \
           -DSD_VERSION='"$(VERSION)"' -DSD_MODULE_DIR='"$(MODDIR)"' \
           -DSD_DATA_DIR='"$(DATADIR)"'
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -ldl -lpthread -lm

BUILD   := build
ASAN_BUILD := build/asan
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# util/: the small library linked into the core and into every module
# (no SQLite, no core state). util/sdjson.c needs jansson and is linked only
# where JSON is written.
UTIL_SRC := $(filter-out util/sdjson.c,$(wildcard util/*.c))
UTIL_OBJ := $(UTIL_SRC:%.c=$(BUILD)/%.o)
UTIL_HDRS := $(wildcard util/*.h)

# core/store/s3.c and rados.c are store modules (store_NAME.so), not core
STORE_MODULE_SRC := $(wildcard core/store/s3.c core/store/rados.c)
CORE_SRC := $(filter-out core/main.c $(STORE_MODULE_SRC),$(wildcard core/*.c core/store/*.c)) $(wildcard db/*.c) $(UTIL_SRC)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
CORE_ASAN_OBJ := $(CORE_SRC:%.c=$(ASAN_BUILD)/%.o)
HDRS := $(wildcard core/*.h core/store/*.h db/*.h) $(UTIL_HDRS)

# Each front end adds itself: frontends/<name>/module.mk sets
#   MODULES += name
#   name_PKGS := pkg-config packages   name_LDLIBS := extra libraries
#   name_SHARED_SRC := shared non-core sources compiled into the module
#                      (e.g. util/sdjson.c; never core/ or db/ code)
MODULES :=
-include $(wildcard frontends/*/module.mk)
MODULE_SOS := $(MODULES:%=frontends/%.so)
# Blob store modules (core/store_module.h): built next to the front ends
# (module_dir), each linked only against its own library and util/.
STORE_SOS := frontends/store_s3.so frontends/store_rados.so
s3_STORE_LIBS := $(shell pkg-config --libs libcurl 2>/dev/null)
rados_STORE_LIBS := -lrados

# The first rule is the default goal: plain `make` builds the programs.
.DEFAULT_GOAL := all
-include packaging/packaging.mk

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_ASAN_BIN := $(UNIT_SRC:tests/unit/%.c=$(ASAN_BUILD)/tests/%)
TEST_MODULES := $(BUILD)/tests/testmod.so $(BUILD)/tests/badabi.so $(BUILD)/tests/badsig.so

# libstoraged, stor and their test programs (client/client.mk)
include client/client.mk

.PHONY: all deps run test unit unit-asan integration integration-asan asan fuzz install clean doc-config bench test-backends test-browser
all: storaged storagectl $(MODULE_SOS) $(STORE_SOS) client

deps:
	@packaging/install-deps.sh

# migrations/*.sql are compiled in, so a binary always knows its schema.
$(BUILD)/migrations.c: $(sort $(wildcard migrations/*.sql)) db/embed-migrations.sh
	@mkdir -p $(dir $@)
	db/embed-migrations.sh $(sort $(wildcard migrations/*.sql)) > $@.tmp && mv $@.tmp $@

$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(ASAN_BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -DSD_TEST_BUILD -c -o $@ $<

$(BUILD)/libsdcore.a: $(CORE_OBJ) $(BUILD)/migrations.o
	$(AR) rcs $@ $^

$(ASAN_BUILD)/libsdcore.a: $(CORE_ASAN_OBJ) $(ASAN_BUILD)/migrations.o
	$(AR) rcs $@ $^

$(ASAN_BUILD)/migrations.o: $(BUILD)/migrations.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c -o $@ $<

storaged: $(BUILD)/core/main.o $(BUILD)/libsdcore.a
	$(CC) $(CFLAGS) $(LDFLAGS) -rdynamic -o $@ $^ $(LDLIBS)

# storagectl: cli/*.c plus the JSON serialiser it shares with the HTTP
# front end (util/sdjson.c, jansson).
JANSSON_CFLAGS := $(shell pkg-config --cflags jansson 2>/dev/null)
JANSSON_LIBS   := $(shell pkg-config --libs jansson 2>/dev/null)
CLI_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cli/*.c) util/sdjson.c)
$(CLI_OBJ): override CPPFLAGS += $(JANSSON_CFLAGS)
$(CLI_OBJ): $(wildcard cli/*.h) util/sdjson.h

storagectl: $(CLI_OBJ) $(BUILD)/libsdcore.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(LDLIBS)

$(BUILD)/libsdutil.a: $(UTIL_OBJ)
	$(AR) rcs $@ $^

# Front-end modules: position-independent, linked only against their own
# libraries and util/ (whose symbols stay private to the module); the core
# reaches them through the sd_core_api table.
define module_rule
$(1)_SRC := $$(wildcard frontends/$(1)/*.c) $$($(1)_SHARED_SRC)
$(1)_HDR := $$(wildcard frontends/$(1)/*.h) $$($(1)_SHARED_SRC:.c=.h)
frontends/$(1).so: $$($(1)_SRC) $$($(1)_HDR) core/storaged.h $(UTIL_HDRS) $(BUILD)/libsdutil.a
	$$(CC) $$(CPPFLAGS) $$(CFLAGS) $$(LDFLAGS) $$(if $$($(1)_PKGS),$$(shell pkg-config --cflags $$($(1)_PKGS))) -shared \
		-Wl,--no-undefined -Wl,--exclude-libs,ALL -o $$@ $$($(1)_SRC) $(BUILD)/libsdutil.a \
		$$(if $$($(1)_PKGS),$$(shell pkg-config --libs $$($(1)_PKGS))) $$($(1)_LDLIBS) -lpthread
endef
$(foreach m,$(MODULES),$(eval $(call module_rule,$(m))))

frontends/store_%.so: core/store/%.c core/store.h core/store_module.h core/storaged.h $(UTIL_HDRS) $(BUILD)/libsdutil.a
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -shared -Wl,--no-undefined -Wl,--exclude-libs,ALL \
		-o $@ $< $(BUILD)/libsdutil.a $($*_STORE_LIBS) -lpthread

# make asan: the daemon and every module built with ASan/UBSan (and the
# engine's test-build invariant checks, SD_TEST_BUILD), beside the plain
# build. The integration harness runs them when SD_STORAGED and
# SD_MODULE_DIR point at them (integration-asan below).
ASAN_DAEMON := $(ASAN_BUILD)/storaged
ASAN_MODULE_SOS := $(MODULES:%=$(ASAN_BUILD)/frontends/%.so)
$(ASAN_BUILD)/libsdutil.a: $(UTIL_SRC:%.c=$(ASAN_BUILD)/%.o)
	$(AR) rcs $@ $^
$(ASAN_DAEMON): $(ASAN_BUILD)/core/main.o $(ASAN_BUILD)/libsdcore.a
	$(CC) $(CFLAGS) $(SAN_FLAGS) $(LDFLAGS) -rdynamic -o $@ $^ $(LDLIBS)
define asan_module_rule
$(ASAN_BUILD)/frontends/$(1).so: $$($(1)_SRC) $$($(1)_HDR) core/storaged.h $(UTIL_HDRS) $(ASAN_BUILD)/libsdutil.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) $$(CFLAGS) $(SAN_FLAGS) -DSD_TEST_BUILD $$(LDFLAGS) $$(if $$($(1)_PKGS),$$(shell pkg-config --cflags $$($(1)_PKGS))) -shared \
		-Wl,--no-undefined -Wl,--exclude-libs,ALL -o $$@ $$($(1)_SRC) $(ASAN_BUILD)/libsdutil.a \
		$$(if $$($(1)_PKGS),$$(shell pkg-config --libs $$($(1)_PKGS))) $$($(1)_LDLIBS) -lpthread
endef
$(foreach m,$(MODULES),$(eval $(call asan_module_rule,$(m))))
asan: $(ASAN_DAEMON) $(ASAN_MODULE_SOS)

# The ASan/UBSan daemon under the integration tests that reach every
# protocol's parsers (a sanitizer report fails the run: the daemon's exit
# status must be 0). ASAN_PYTEST: which tests.
ASAN_PYTEST ?= tests/integration/test_hardening.py tests/integration/test_resolver.py
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86 \
	SD_STORAGED=$(CURDIR)/$(ASAN_DAEMON) SD_MODULE_DIR=$(CURDIR)/$(ASAN_BUILD)/frontends
integration-asan: all asan
	@$(ASAN_ENV) tests/integration/run.sh $(ASAN_PYTEST)

# ---------------------------------------------------------------- tests
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

# test_module loads these: a good module and two the loader must refuse
$(BUILD)/tests/%.so: tests/unit/testmod/%.c core/storaged.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $<

# TEST_EXTRA: more sources and libraries a suite links (set per suite below)
$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/libsdcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -o $@ $< $(TEST_EXTRA) $(BUILD)/libsdcore.a $(CHECK_LIBS) $(LDLIBS)

$(ASAN_BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(ASAN_BUILD)/libsdcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -DSD_TEST_BUILD $(CHECK_CFLAGS) -o $@ $< $(TEST_EXTRA) $(ASAN_BUILD)/libsdcore.a $(CHECK_LIBS) $(LDLIBS)

# test_sdjson: the JSON serialiser shared by storagectl and the HTTP module
$(BUILD)/tests/test_sdjson $(ASAN_BUILD)/tests/test_sdjson: util/sdjson.c util/sdjson.h
$(BUILD)/tests/test_sdjson $(ASAN_BUILD)/tests/test_sdjson: \
	TEST_EXTRA = $(JANSSON_CFLAGS) util/sdjson.c $(JANSSON_LIBS)

# test_http_ranges: the HTTP module's leaf parsers (frontends/http/ranges.c)
$(BUILD)/tests/test_http_ranges $(ASAN_BUILD)/tests/test_http_ranges: \
	frontends/http/ranges.c frontends/http/http.h
$(BUILD)/tests/test_http_ranges $(ASAN_BUILD)/tests/test_http_ranges: \
	TEST_EXTRA = $(JANSSON_CFLAGS) -Ifrontends/http frontends/http/ranges.c

unit: $(UNIT_BIN) $(TEST_MODULES)
	@tests/unit/run.sh $(UNIT_BIN)

unit-asan: $(UNIT_ASAN_BIN) $(TEST_MODULES)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		tests/unit/run.sh $(UNIT_ASAN_BIN)

# PYTEST_ARGS: e.g. "-k ftp", "tests/integration/test_http.py::test_quota", "-x"
integration: all
	@tests/integration/run.sh $(PYTEST_ARGS)

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory unit-asan
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory integration-asan

# The remote blob stores against a real single-host Ceph cluster that the
# script starts and stops (minutes: not part of `make test`).
test-backends: all $(BUILD)/tests/test_backends
	@packaging/install-deps.sh --ceph
	@tests/ceph/run-backends.sh

run: deps
	@$(MAKE) --no-print-directory all
	./storaged -c storaged.conf

# ---------------------------------------------------------------- fuzzing
# libFuzzer harnesses (fuzz/*.c, Debian clang) of the parsers that read
# network or config bytes; seed corpora in fuzz/corpus/<harness>/ (found
# crashes go there too, as regression inputs). `make fuzz` builds them and
# runs each for FUZZ_SECONDS (default 15: about a minute in all); new
# inputs go to build/fuzz/work/<harness>/, never into the committed seeds.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 15
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-std=c11 -D_GNU_SOURCE -I. -Icore -Iutil -DSD_VERSION='"$(VERSION)"' -DSD_MODULE_DIR='"$(MODDIR)"'
FUZZ_UTIL := $(UTIL_SRC)
FUZZ_HTTP := frontends/http/wire.c frontends/http/ranges.c
FUZZ_BINS := $(BUILD)/fuzz/fuzz_http_wire $(BUILD)/fuzz/fuzz_http_mpw $(BUILD)/fuzz/fuzz_sftp_packet \
	$(BUILD)/fuzz/fuzz_conf
$(BUILD)/fuzz/fuzz_http_%: fuzz/fuzz_http_%.c $(FUZZ_HTTP) frontends/http/http.h $(UTIL_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -Ifrontends/http $(shell pkg-config --cflags libmicrohttpd jansson) -o $@ \
		$< $(FUZZ_HTTP) $(FUZZ_UTIL) $(shell pkg-config --libs libmicrohttpd jansson) $(LDLIBS)
$(BUILD)/fuzz/fuzz_sftp_packet: fuzz/fuzz_sftp_packet.c frontends/sftp/wire.c $(wildcard frontends/sftp/*.h) $(UTIL_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -Ifrontends/sftp -o $@ $< frontends/sftp/wire.c $(FUZZ_UTIL) -lssh $(LDLIBS)
$(BUILD)/fuzz/fuzz_conf: fuzz/fuzz_conf.c core/conf.c $(HDRS) $(BUILD)/libsdcore.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< core/conf.c $(BUILD)/libsdcore.a $(LDLIBS)
fuzz: $(FUZZ_BINS)
	@set -e; for b in $(FUZZ_BINS); do n=$$(basename $$b); mkdir -p $(BUILD)/fuzz/work/$$n; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		$$b -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
			-artifact_prefix=$(BUILD)/fuzz/crash-$$n- $(BUILD)/fuzz/work/$$n fuzz/corpus/$$n \
			2>$(BUILD)/fuzz/$$n.log || { tail -40 $(BUILD)/fuzz/$$n.log; exit 1; }; \
		grep -E "stat::number_of_executed_units|cov:" $(BUILD)/fuzz/$$n.log | tail -2; done

# Benchmarks against peer servers (by hand; rewrites docs/benchmarks.md).
# BENCH_ARGS=--quick for a smaller run.
bench:
	@packaging/install-deps.sh --bench
	@$(MAKE) --no-print-directory all
	bench/run.sh $(BENCH_ARGS)

# The web client end to end in Debian's headless chromium (tests/browser/):
# screenshots in tests/browser/artifacts/.
test-browser: all
	@packaging/install-deps.sh --browser
	/usr/bin/python3 tests/browser/run.py

# Regenerate the key reference inside docs/configuration.md.
doc-config: all
	docs/gen-config-reference.sh ./storaged storaged.conf docs/configuration.md > docs/configuration.md.new
	mv docs/configuration.md.new docs/configuration.md

install: all install-client
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MODDIR) \
		$(DESTDIR)$(SYSCONFDIR)/storaged
	install -m 0755 storaged $(DESTDIR)$(SBINDIR)/storaged
	install -m 0755 storagectl $(DESTDIR)$(BINDIR)/storagectl
	$(if $(MODULE_SOS),install -m 0644 $(MODULE_SOS) $(DESTDIR)$(MODDIR)/)
	install -d $(DESTDIR)$(DATADIR)/web
	install -m 0644 $(wildcard frontends/http/web/*) $(DESTDIR)$(DATADIR)/web/
	test -e $(DESTDIR)$(SYSCONFDIR)/storaged/storaged.conf || \
		sed 's|^module_dir *=.*|module_dir = $(MODDIR)|' packaging/storaged.conf \
		> $(DESTDIR)$(SYSCONFDIR)/storaged/storaged.conf

clean:
	rm -rf $(BUILD) storaged storagectl stor storfs frontends/*.so
