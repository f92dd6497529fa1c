# storaged - the only build system. See README.md.
#
#   make            build storaged, storagectl, the front-end modules,
#                   libstoraged (client library) and stor (client tools)
#   make run        install deps, build, run the daemon with ./storaged.conf
#   make test       install deps, build, unit tests (plain + ASan/UBSan),
#                   integration tests against the real daemon
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
PKGS    := sqlite3 libsodium libcrypto inih
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC -pthread \
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

CORE_SRC := $(filter-out core/main.c,$(wildcard core/*.c core/store/*.c)) $(wildcard db/*.c) $(UTIL_SRC)
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

# The first rule is the default goal: plain `make` builds the programs.
.DEFAULT_GOAL := all
-include packaging/packaging.mk

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_ASAN_BIN := $(UNIT_SRC:tests/unit/%.c=$(ASAN_BUILD)/tests/%)
TEST_MODULES := $(BUILD)/tests/testmod.so $(BUILD)/tests/badabi.so $(BUILD)/tests/badsig.so

# libstoraged, stor and their test programs (client/client.mk)
include client/client.mk

.PHONY: all deps run test unit unit-asan integration install clean doc-config bench test-browser
all: storaged storagectl $(MODULE_SOS) client

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
$(CLI_OBJ): CPPFLAGS += $(JANSSON_CFLAGS)
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

run: deps
	@$(MAKE) --no-print-directory all
	./storaged -c storaged.conf

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
	rm -rf $(BUILD) storaged storagectl stor frontends/*.so
