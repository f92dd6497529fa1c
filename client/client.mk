# client/client.mk - libstoraged, the `stor` tools and their test programs;
# included by the top Makefile.
#
#   build/libstoraged.so.$(CLIENT_SOVER)   the shared library (soname libstoraged.so.0,
#                                          only sdc_* exported: libstoraged.map)
#   build/libstoraged.a                    the same objects, for `stor` (linked
#                                          statically: runs from the checkout)
#   stor                                   the command-line tools (client/stor/)
#   storfs                                 the FUSE mount (client/storfs/, libfuse3),
#                                          on the same static library
#   build/tests/client-*                   test programs (tests/client/), linked
#                                          against the shared library

CLIENT_SOMAJOR := 0
CLIENT_SOVER   := 0.1.0
INCLUDEDIR     ?= $(PREFIX)/include
PKGCONFIGDIR   ?= $(LIBDIR)/pkgconfig
CLIENT_PKGS    := libcurl jansson libcrypto
CLIENT_CFLAGS  := $(shell pkg-config --cflags $(CLIENT_PKGS) 2>/dev/null) -Iclient
CLIENT_LIBS    := $(shell pkg-config --libs $(CLIENT_PKGS) 2>/dev/null) -lpthread

CLIENT_SRC  := $(wildcard client/*.c)
CLIENT_HDRS := $(wildcard client/*.h)
CLIENT_OBJ  := $(CLIENT_SRC:%.c=$(BUILD)/%.o)
STOR_SRC    := $(wildcard client/stor/*.c)
STOR_OBJ    := $(STOR_SRC:%.c=$(BUILD)/%.o)
CLIENT_SO   := $(BUILD)/libstoraged.so.$(CLIENT_SOVER)
STORFS_SRC  := $(wildcard client/storfs/*.c)
STORFS_OBJ  := $(STORFS_SRC:%.c=$(BUILD)/%.o)
FUSE_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS   := $(shell pkg-config --libs fuse3 2>/dev/null)
CLIENT_TEST_SRC := $(wildcard tests/client/*.c)
CLIENT_TEST_BIN := $(CLIENT_TEST_SRC:tests/client/%.c=$(BUILD)/tests/client-%)

$(CLIENT_OBJ): override CPPFLAGS += $(CLIENT_CFLAGS)
$(CLIENT_OBJ): $(CLIENT_HDRS)
$(STOR_OBJ): override CPPFLAGS += $(CLIENT_CFLAGS) $(shell pkg-config --cflags inih)
$(STOR_OBJ): $(CLIENT_HDRS) $(wildcard client/stor/*.h)

$(CLIENT_SO): $(CLIENT_OBJ) client/libstoraged.map
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,libstoraged.so.$(CLIENT_SOMAJOR) \
		-Wl,--version-script,client/libstoraged.map -Wl,--no-undefined \
		-o $@ $(CLIENT_OBJ) $(CLIENT_LIBS)
	ln -sf libstoraged.so.$(CLIENT_SOVER) $(BUILD)/libstoraged.so.$(CLIENT_SOMAJOR)
	ln -sf libstoraged.so.$(CLIENT_SOMAJOR) $(BUILD)/libstoraged.so

$(BUILD)/libstoraged.a: $(CLIENT_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/libstoraged.pc: client/libstoraged.pc.in Makefile client/client.mk
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(CLIENT_SOVER)|' $< > $@

$(STORFS_OBJ): CPPFLAGS += $(CLIENT_CFLAGS) $(FUSE_CFLAGS)
$(STORFS_OBJ): $(CLIENT_HDRS)

storfs: $(STORFS_OBJ) $(BUILD)/libstoraged.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(STORFS_OBJ) $(BUILD)/libstoraged.a $(CLIENT_LIBS) $(FUSE_LIBS)

stor: $(STOR_OBJ) $(BUILD)/libstoraged.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(STOR_OBJ) $(BUILD)/libstoraged.a $(CLIENT_LIBS) \
		$(shell pkg-config --libs inih)

$(BUILD)/tests/client-%: tests/client/%.c client/storaged-client.h $(CLIENT_SO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iclient -o $@ $< -L$(BUILD) -lstoraged -Wl,-rpath,'$$ORIGIN/..' -lpthread

.PHONY: client install-client
client: $(CLIENT_SO) $(BUILD)/libstoraged.pc stor storfs $(CLIENT_TEST_BIN)

install-client: client
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 0755 stor $(DESTDIR)$(BINDIR)/stor
	install -m 0755 storfs $(DESTDIR)$(BINDIR)/storfs
	install -m 0644 $(CLIENT_SO) $(DESTDIR)$(LIBDIR)/libstoraged.so.$(CLIENT_SOVER)
	ln -sf libstoraged.so.$(CLIENT_SOVER) $(DESTDIR)$(LIBDIR)/libstoraged.so.$(CLIENT_SOMAJOR)
	ln -sf libstoraged.so.$(CLIENT_SOMAJOR) $(DESTDIR)$(LIBDIR)/libstoraged.so
	install -m 0644 client/storaged-client.h $(DESTDIR)$(INCLUDEDIR)/storaged-client.h
	install -m 0644 $(BUILD)/libstoraged.pc $(DESTDIR)$(PKGCONFIGDIR)/libstoraged.pc
