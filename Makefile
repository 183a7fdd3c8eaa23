# SPDX-License-Identifier: MIT
# ktun: one Makefile for the cores, the binaries, the tests and the benchmarks.
#
# Sources are found by wildcard so that a new module or test file needs no edit here:
#   common/ fec/ crypto/     -> build/libktun.a (cores and shell helpers)
#   client/*.c server/*.c    -> bin/ktun-client, bin/ktun-server
#   tests/**/test_*.c        -> test suites linked into build/tests/run
#   tests/**/other .c        -> test support (simulator, vector loader), shared by tests and benches
#   tests/bench/*.c          -> build/tests/bench
#   tests/tools/*.c          -> build/tools/<name>, one program per file

CC      ?= cc
# ---- build flags ------------------------------------------------------------------------------
# CFLAGS, CPPFLAGS and LDFLAGS belong to the user (`make CFLAGS='-O0 -g'` replaces only the
# optimisation and debug choice); what the build needs is kept apart in KTUN_* and always used.
CFLAGS  ?= -O2 -g
KTUN_CFLAGS := -std=gnu11 -D_GNU_SOURCE -MMD -MP -I. -pthread -ffunction-sections -fdata-sections \
               -ffile-prefix-map=$(CURDIR)/=
KTUN_LDFLAGS :=
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
           -Wwrite-strings -Wformat=2 -Wvla -Wundef
# The pure cores (no sockets, clocks or libev; see scripts/check-layering.sh) are also held
# to implicit-conversion warnings; the shell (libev, sockets, the process) is not.
CORE_WARN := -Wconversion -Wsign-conversion
ifeq ($(WERROR),1)
WARN    += -Werror
endif
LDLIBS  := -lev -lsodium -lisal -lsnappy -lgcrypt -lcjson -lm -pthread
# ktun-client and ktun-server link Debian's static archives of libev, libsodium, libgcrypt and
# libgpg-error, keeping only the code they use: a process then maps about 1.1 MB less of
# shared-library pages (resident set, see README). glibc stays shared (getaddrinfo, NSS), and
# so do libisal and libcjson (Debian ships no .a for them). Snappy blocks are our own
# (common/snappy.c): libsnappy (C++) only serves the tests, which check ours against it.
# scripts/link-hot.ld puts the code and data they run in one block (see there), and packed
# relative relocations (DT_RELR) shrink the relocation table ld.so reads at startup.
# `make STATIC=0` links them like the tests instead: shared libraries, default layout.
STATIC  ?= 1
ifeq ($(STATIC),1)
BIN_LDSCRIPT:= scripts/link-hot.ld
# The hot constants start a page of their own only where ld separates code from data (x86).
BIN_RODATA_PAGE := $(if $(filter x86_64% i686% i386%,$(shell $(CC) -dumpmachine)),1,0)
# --exclude-libs: the static libraries' globals stay out of the dynamic symbol table (on MIPS
# they were exported: 80 symbols, 3.5 KB of the size build).
BIN_LDFLAGS := -static-libgcc -Wl,--gc-sections -Wl,--as-needed -Wl,-z,pack-relative-relocs \
               -Wl,--exclude-libs,ALL -Wl,--defsym=ktun_rodata_page=$(BIN_RODATA_PAGE) \
               -Wl,-T,$(BIN_LDSCRIPT)
BIN_LDLIBS  := -Wl,-Bstatic -lev -lsodium -lgcrypt -lgpg-error -Wl,-Bdynamic \
               -lisal -lcjson -lm -pthread
else
BIN_LDSCRIPT:=
BIN_LDFLAGS := -Wl,--gc-sections -Wl,--as-needed
BIN_LDLIBS  := $(filter-out -lsnappy,$(LDLIBS))
endif

BUILD   := build
ifneq ($(SANITIZE),)
BUILD   := build-san
KTUN_CFLAGS += -fsanitize=$(SANITIZE) -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
               -DNO_POOL
KTUN_LDFLAGS += -fsanitize=$(SANITIZE)
endif
# Build profiles and options (see also "install" below):
#   PROFILE=size  -Os, link-time optimisation and section GC, for routers (build-size/bin/)
#   GCRYPT=0      without libgcrypt: every method from ciphers of our own (crypto/blkc.c: AES,
#                 Blowfish, Twofish, CAST-128, 3DES, SM4 in CFB; crypto/gcm.c: AES-128-GCM;
#                 crypto/pbkdf2.c), slower than libgcrypt's AES-NI code on x86 but as fast for
#                 the legacy ciphers (build-nogcrypt/, build-size-nogcrypt/)
# Builds other than the default one put their binaries in $(BUILD)/bin/.
ifeq ($(PROFILE),size)
BUILD   := build-size
PROFILE_CFLAGS  := -Os -flto=auto -fno-asynchronous-unwind-tables -fno-unwind-tables
PROFILE_LDFLAGS := -Os -flto=auto
KTUN_CFLAGS += -DKTUN_SIZE_PROFILE
ifeq ($(origin AR),default)
AR      := $(if $(filter %gcc,$(CC)),$(CC)-ar,gcc-ar)
endif
else ifneq ($(PROFILE),)
$(error PROFILE=$(PROFILE): only "size" is known)
endif
ifeq ($(GCRYPT),0)
BUILD   := $(BUILD)-nogcrypt
KTUN_CFLAGS += -DKTUN_NO_GCRYPT
BIN_LDLIBS := $(filter-out -lgcrypt -lgpg-error,$(BIN_LDLIBS))
endif
#   ISAL=0        without libisal: CRC-32, CRC-32C and the Reed-Solomon kernels from portable
#                 code of our own (fec/isal_own.c), as fast as ISA-L's own portable code on
#                 MIPS and 32-bit ARM, slower than its SIMD code on x86-64 and arm64; the
#                 size profile's default (ISAL=1 keeps libisal there). The programs then
#                 need no libisal; the tests still link it, to check ours against it.
ISAL_DEFAULT := $(if $(filter size,$(PROFILE)),0,1)
ISAL    ?= $(ISAL_DEFAULT)
ifneq ($(ISAL),$(ISAL_DEFAULT))
BUILD   := $(BUILD)$(if $(filter 0,$(ISAL)),-noisal,-isal)
endif
ifeq ($(ISAL),0)
KTUN_CFLAGS += -DKTUN_NO_ISAL
BIN_LDLIBS := $(filter-out -lisal,$(BIN_LDLIBS))
endif
# Its kernels run per datagram: -O2 even in the size profile (3x the speed of -Os, 0.5 KB).
$(BUILD)/fec/isal_own.o: PROFILE_CFLAGS += -O2

# A profile's optimisation flags come last, so that they win over the default CFLAGS.
ALL_CFLAGS  = $(KTUN_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(PROFILE_CFLAGS)
ALL_LDFLAGS = $(KTUN_LDFLAGS) $(LDFLAGS) $(PROFILE_LDFLAGS)

# Objects depend on a stamp holding the flags they were built with: it is rewritten only when
# the flags change, so a new CFLAGS, CC, SANITIZE, PROFILE or STATIC rebuilds everything, and
# nothing else does.
FLAGS_STAMP := $(BUILD)/flags.stamp
FLAGS_NOW   := $(CC) $(ALL_CFLAGS) $(CORE_WARN) | $(ALL_LDFLAGS) | $(STATIC)
ifneq ($(MAKECMDGOALS),clean)
ifneq ($(file <$(FLAGS_STAMP)),$(FLAGS_NOW))
$(shell mkdir -p $(BUILD))
$(file >$(FLAGS_STAMP),$(FLAGS_NOW))
endif
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRCS    := $(wildcard common/*.c fec/*.c crypto/*.c)
MULTI_SRCS  := $(wildcard ktun/*.c)
# Layers (checked by scripts/check-layering.sh): the shell does I/O, the cores do not. A new
# file under common/ is a core unless listed here.
SHELL_SRCS  := $(addprefix common/,config.c fwrule.c log.c net.c rawtcp.c resolve.c sess.c shell.c \
                                    snmp.c socksudp.c stream.c udpfwd.c)
CORE_SRCS   := $(filter-out $(SHELL_SRCS),$(LIB_SRCS))
CLIENT_SRCS := $(wildcard client/*.c)
SERVER_SRCS := $(wildcard server/*.c)
TEST_ALL    := $(wildcard tests/*.c tests/unit/*.c tests/sim/*.c)
TEST_SRCS   := $(foreach f,$(TEST_ALL),$(if $(filter test_%.c run.c,$(notdir $(f))),$(f)))
SUPPORT_SRCS:= $(filter-out $(TEST_SRCS),$(TEST_ALL))
BENCH_SRCS  := $(wildcard tests/bench/*.c)
TOOL_SRCS   := $(wildcard tests/tools/*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

LIB      := $(BUILD)/libktun.a
BINS     := $(if $(CLIENT_SRCS),bin/ktun-client) $(if $(SERVER_SRCS),bin/ktun-server) bin/ktun
ifneq ($(BUILD),build)
BINS     := $(patsubst bin/%,$(BUILD)/bin/%,$(BINS))
endif
TEST_BIN := $(BUILD)/tests/run
BENCH_BIN:= $(BUILD)/tests/bench/run
TOOLS    := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))

.PHONY: all test test-build bench check clean deps tools
.SECONDARY:
all: $(BINS) $(TOOLS)

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(WARN) -c $< -o $@

$(call obj,$(CORE_SRCS)): WARN += $(CORE_WARN)

$(FLAGS_STAMP):
	@mkdir -p $(dir $@)
	$(file >$@,$(FLAGS_NOW))

$(LIB): $(call obj,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

bin/ktun-client $(BUILD)/bin/ktun-client: $(call obj,$(CLIENT_SRCS)) $(LIB) $(BIN_LDSCRIPT)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) $(BIN_LDFLAGS) -o $@ $(filter-out $(BIN_LDSCRIPT),$^) $(BIN_LDLIBS)

bin/ktun-server $(BUILD)/bin/ktun-server: $(call obj,$(SERVER_SRCS)) $(LIB) $(BIN_LDSCRIPT)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) $(BIN_LDFLAGS) -o $@ $(filter-out $(BIN_LDSCRIPT),$^) $(BIN_LDLIBS)

$(TEST_BIN): $(call obj,$(TEST_SRCS) $(SUPPORT_SRCS)) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BENCH_BIN): $(call obj,$(BENCH_SRCS) $(SUPPORT_SRCS)) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

tools: $(TOOLS)

# ---- shared library for the Python binding (python/) ---------------------------------------
# make libktun.so  -> $(BUILD)/libktun.so: the cores and python/csrc/ (the binding's queues),
# compiled -fPIC into $(BUILD)/pic/ so that the static archive and binaries stay as they are.
SHLIB_SRCS := $(LIB_SRCS) $(wildcard python/csrc/*.c)
SHLIB      := $(BUILD)/libktun.so
.PHONY: libktun.so
libktun.so: $(SHLIB)

$(BUILD)/pic/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (pic)")
	$(Q)$(CC) $(ALL_CFLAGS) $(WARN) -fPIC -c $< -o $@

$(patsubst %.c,$(BUILD)/pic/%.o,$(CORE_SRCS)): WARN += $(CORE_WARN)

$(SHLIB): $(patsubst %.c,$(BUILD)/pic/%.o,$(SHLIB_SRCS))
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -shared -Wl,-soname,libktun.so -Wl,-z,defs -o $@ $^ $(LDLIBS)

# `make test` also runs the Python binding's tests (scripts/run-tests.sh; in a sanitizer build
# with the sanitizer runtimes preloaded into the interpreter).
test-build: $(SHLIB)

# `make test` runs every test: the in-process suites, every tests/e2e/test_*.sh script (side by
# side, see scripts/run-tests.sh) and the Python binding's tests. The last line of the run is
# "N passed, N failed". `make test-build` only builds what they need.
test-build: $(TEST_BIN) $(BINS) $(TOOLS)
test: test-build
	$(Q)BUILD=$(BUILD) scripts/run-tests.sh

bench: $(BENCH_BIN)
	$(Q)$(BENCH_BIN)

check: test

# `make print-VAR` prints a variable (scripts/check-layering.sh reads CORE_SRCS this way).
print-%:
	@echo $($*)

deps:
	scripts/deps.sh

clean:
	rm -rf build build-san build-size build-nogcrypt build-size-nogcrypt build-noisal build-nogcrypt-noisal \
	    build-size-isal build-size-nogcrypt-isal build-cov bin $(BUILD)

-include $(shell find $(sort build build-san $(BUILD)) -name '*.d' 2>/dev/null)

# ---- fuzzing (tests/fuzz/): one libFuzzer harness per parser, see tests/fuzz/fuzz.h ----------
# make fuzz        clang libFuzzer binaries in build-fuzz/fuzz/<target>
# make fuzz-smoke  runs each harness briefly and replays its corpus (FUZZ_SECONDS per harness)
# make test        also builds $(BUILD)/fuzz-replay/<target> (gcc, corpus replay without libFuzzer)
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_REPLAY  := $(patsubst %,$(BUILD)/fuzz-replay/%,$(FUZZ_TARGETS))
FUZZ_BUILD   := build-fuzz
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := -O1 -g -std=gnu11 -D_GNU_SOURCE -MMD -MP -I. -pthread -DNO_POOL \
                -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_BINS    := $(patsubst %,$(FUZZ_BUILD)/fuzz/%,$(FUZZ_TARGETS))
FUZZ_SECONDS ?= 25

.PHONY: fuzz fuzz-smoke fuzz-clean

test-build: $(FUZZ_REPLAY)

$(BUILD)/fuzz-replay/%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# Library objects get coverage instrumentation (fuzzer-no-link); the harness links libFuzzer.
$(FUZZ_BUILD)/lib/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARN) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(FUZZ_BUILD)/libktun.a: $(patsubst %.c,$(FUZZ_BUILD)/lib/%.o,$(LIB_SRCS))
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz/%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libktun.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARN) -fsanitize=fuzzer,address,undefined -o $@ $(filter %.c %.a,$^) $(LDLIBS)

fuzz: $(FUZZ_BINS)

fuzz-smoke: fuzz
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh smoke $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

clean: fuzz-clean

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)

# ---- multi-call binary, sizes, install ------------------------------------------------------
# bin/ktun runs as the client or the server by the name it is called by (ktun-client,
# ktun-server, kcptun-client, kcptun-server) or by its first argument (`ktun client ...`):
# client/main.c and server/main.c compiled with KTUN_MULTICALL (no main()), plus ktun/main.c.
MULTI_OBJS := $(call obj,$(MULTI_SRCS)) \
              $(patsubst %.c,$(BUILD)/multi/%.o,$(CLIENT_SRCS) $(SERVER_SRCS))

$(BUILD)/multi/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (multi-call)")
	$(Q)$(CC) $(ALL_CFLAGS) $(WARN) -DKTUN_MULTICALL -c $< -o $@

bin/ktun $(BUILD)/bin/ktun: $(MULTI_OBJS) $(LIB) $(BIN_LDSCRIPT)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) $(BIN_LDFLAGS) -o $@ $(filter-out $(BIN_LDSCRIPT),$^) $(BIN_LDLIBS)

KTUN_BIN := $(filter %/ktun,$(BINS))

# `make size`: stripped size of every binary of this build as bench lines,
# "bench: size.<profile>.<arch> N bytes" (profile: default or size, -nogcrypt appended).
SIZE_PROFILE := $(or $(PROFILE),default)$(if $(filter 0,$(GCRYPT)),-nogcrypt)$(if $(filter-out $(ISAL_DEFAULT),$(ISAL)),$(if $(filter 0,$(ISAL)),-noisal,-isal))
SIZE_ARCH    ?= $(shell $(CC) -dumpmachine | cut -d- -f1)
STRIP        ?= $(if $(filter %gcc,$(CC)),$(patsubst %gcc,%strip,$(CC)),strip)
.PHONY: size
size: $(BINS)
	$(Q)for b in $(BINS); do \
	    $(STRIP) -o $$b.stripped $$b && \
	    n=$$(stat -c %s $$b.stripped) && rm -f $$b.stripped && \
	    role=$$(basename $$b | sed 's/^ktun//; s/^-/./') && \
	    echo "bench: size.$(SIZE_PROFILE).$(SIZE_ARCH)$$role $$n bytes"; \
	done

# `make install` (PREFIX, DESTDIR; BINDIR, MANDIR, SYSCONFDIR, UNITDIR): bin/ktun as
# $(BINDIR)/ktun with ktun-client and ktun-server links, the man pages, the systemd units
# (hardened, see dist/systemd/) and, unless present, example configurations in
# $(SYSCONFDIR)/ktun/ (mode 0600: they hold the key). KCPTUN_LINKS=1 adds kcptun-client and
# kcptun-server links (they replace Debian's kcptun package's programs).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
UNITS      := $(patsubst dist/systemd/%.in,%,$(wildcard dist/systemd/*.service.in))
.PHONY: install uninstall
install: $(KTUN_BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/ktun
	install -m 0755 $(KTUN_BIN) $(DESTDIR)$(BINDIR)/ktun
	ln -sf ktun $(DESTDIR)$(BINDIR)/ktun-client
	ln -sf ktun $(DESTDIR)$(BINDIR)/ktun-server
	install -m 0644 man/ktun.1 man/ktun-client.1 man/ktun-server.1 $(DESTDIR)$(MANDIR)/man1/
	for u in $(UNITS); do \
	    sed 's|@BINDIR@|$(BINDIR)|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/systemd/$$u.in \
	        > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	for f in client server; do \
	    [ -e $(DESTDIR)$(SYSCONFDIR)/ktun/$$f.json ] || \
	        install -m 0600 examples/$$f.json $(DESTDIR)$(SYSCONFDIR)/ktun/$$f.json || exit 1; \
	done
ifeq ($(KCPTUN_LINKS),1)
	ln -sf ktun $(DESTDIR)$(BINDIR)/kcptun-client
	ln -sf ktun $(DESTDIR)$(BINDIR)/kcptun-server
	ln -sf ktun-client.1 $(DESTDIR)$(MANDIR)/man1/kcptun-client.1
	ln -sf ktun-server.1 $(DESTDIR)$(MANDIR)/man1/kcptun-server.1
endif

# Leaves $(SYSCONFDIR)/ktun/ (configurations) alone.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ktun $(DESTDIR)$(BINDIR)/ktun-client \
	    $(DESTDIR)$(BINDIR)/ktun-server $(DESTDIR)$(MANDIR)/man1/ktun.1 \
	    $(DESTDIR)$(MANDIR)/man1/ktun-client.1 $(DESTDIR)$(MANDIR)/man1/ktun-server.1 \
	    $(patsubst %,$(DESTDIR)$(UNITDIR)/%,$(UNITS))
	for n in kcptun-client kcptun-server; do \
	    [ "$$(readlink $(DESTDIR)$(BINDIR)/$$n)" != ktun ] || rm -f $(DESTDIR)$(BINDIR)/$$n; \
	    [ "$$(readlink $(DESTDIR)$(MANDIR)/man1/$$n.1)" != k$${n#kcp}.1 ] || \
	        rm -f $(DESTDIR)$(MANDIR)/man1/$$n.1; \
	done
