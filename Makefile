# SPDX-License-Identifier: GPL-2.0
# xdpmirror: box-to-box disk mirroring over raw Ethernet with XDP, AF_XDP and io_uring.

OUT       := build
CC        ?= gcc
CLANG     ?= clang
BPFTOOL   ?= bpftool
ARCH_INC  := /usr/include/$(shell $(CC) -print-multiarch 2>/dev/null)

CFLAGS    ?= -O2 -g
CFLAGS    += -Wall -Wextra -Wno-unused-parameter -std=gnu11 -D_GNU_SOURCE -MMD -MP \
             -Iinclude -Iuser -I$(OUT)
BPF_CFLAGS := -O2 -g -target bpf -mcpu=v3 -Wall -Iinclude -idirafter $(ARCH_INC) -MMD -MP
# libmicrohttpd serves --metrics-listen (user/metrics/http.c).
MHD_CFLAGS := $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS  := $(or $(shell pkg-config --libs libmicrohttpd 2>/dev/null),-lmicrohttpd)
CFLAGS    += $(MHD_CFLAGS)
LDLIBS    := -lxdp -lbpf -luring -ljson-c -lcrypto -lgnutls -lelf -lz $(MHD_LIBS) \
             $(shell pkg-config --libs libsystemd 2>/dev/null || echo -lsystemd)

# make install: where things go (docs/install.md); DESTDIR is prepended to each.
PREFIX      ?= /usr/local
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
UNITDIR     ?= $(PREFIX)/lib/systemd/system

# Quiet by default; V=1 shows every command.
ifeq ($(V),1)
  Q :=
  msg :=
else
  Q := @
  msg = @printf '  %-7s %s\n' "$(1)" "$(2)";
  MAKEFLAGS += --no-print-directory
endif

# One folder per part of the system (docs/design.md); a header is included with its folder.
USER_DIRS := $(sort $(dir $(wildcard user/*/*.c)))
USER_SRCS := $(wildcard user/*/*.c)
USER_OBJS := $(patsubst user/%.c,$(OUT)/user/%.o,$(USER_SRCS))
# Everything but main.c, so unit tests can link the pure parts.
LIB_OBJS  := $(filter-out $(OUT)/user/cli/main.o,$(USER_OBJS))
BPF_OBJ   := $(OUT)/xdpmirror.bpf.o
SKEL      := $(OUT)/xdpmirror.skel.h
BIN       := $(OUT)/xdpmirror

UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(OUT)/tools/%,$(TOOL_SRCS))
# BPF programs of the tests (the fault injector on the simulated wire).
TEST_BPF  := $(patsubst tests/bpf/%.bpf.c,$(OUT)/tools/%.bpf.o,$(wildcard tests/bpf/*.bpf.c))
# Manual pages: scdoc sources in man/, roff in build/man/.
MANS      := $(patsubst man/%.scd,$(OUT)/man/%,$(wildcard man/*.scd))

.DELETE_ON_ERROR:
.PHONY: all deps test soak demo bench clean help format lint install uninstall man

all: $(BIN) man ## build the BPF object, its skeleton, the xdpmirror binary and the man pages

man: $(MANS) ## render the manual pages (scdoc) into build/man/

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/' | expand -t 10

deps: ## install the Debian packages that are missing (root)
	$(Q)scripts/deps.sh

$(OUT) $(OUT)/tests $(OUT)/tools $(OUT)/man $(patsubst user/%,$(OUT)/user/%,$(USER_DIRS:/=)):
	$(Q)mkdir -p $@

$(BPF_OBJ): bpf/xdpmirror.bpf.c | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(SKEL): $(BPF_OBJ)
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name xdpmirror_bpf > $@

# Everything in user/ may include the skeleton, so it must exist first.
$(OUT)/user/%.o: user/%.c $(SKEL) | $(patsubst user/%,$(OUT)/user/%,$(USER_DIRS:/=))
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BIN): $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(OUT)/man/%: man/%.scd | $(OUT)/man
	$(call msg,SCDOC,$@)
	$(Q)scdoc <$< >$@

$(OUT)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(OUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LIB_OBJS) -o $@ -lcmocka $(LDLIBS)

$(OUT)/tools/%: tests/tools/%.c $(LIB_OBJS) | $(OUT)/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LIB_OBJS) -o $@ $(LDLIBS)

$(OUT)/tools/%.bpf.o: tests/bpf/%.bpf.c | $(OUT)/tools
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

build-tests: $(BIN) man $(UNIT_BINS) $(TOOL_BINS) $(TEST_BPF) $(OUT)/tests/test_fuzz_corpus

test: deps ## run the whole test suite (root); TESTS=name runs one
	$(Q)$(MAKE) build-tests
	$(Q)tests/run.sh $(TESTS)

soak: deps ## minutes of mirrored writes under CPU hogs and a disk hog; no session may end (root)
	$(Q)$(MAKE) build-tests
	$(Q)XM_SOAK_SECONDS=$(or $(SOAK_SECONDS),300) XM_SOAK_CPU_HOGS=$(or $(SOAK_CPU_HOGS),8) \
		XM_SOAK_DISK_HOG=$(or $(SOAK_DISK_HOG),1) \
		XM_TEST_TIMEOUT=$$(( $(or $(SOAK_SECONDS),300) + 300 )) tests/run.sh test_soak

demo: deps ## two boxes in namespaces: ext4 on the NBD export, disks compared (root)
	$(Q)$(MAKE) all
	$(Q)scripts/demo.sh

bench: ## xdpmirror vs link, disk and a QEMU TCP mirror; table, CSV, plot in bench-results/ (root)
	$(Q)scripts/deps.sh bench
	$(Q)$(MAKE) all $(OUT)/tools/xm_linkperf
	$(Q)scripts/bench.sh

# The files make install puts in place, and make uninstall removes.
INSTALLED := $(SBINDIR)/xdpmirror $(SBINDIR)/xdpmirror-pair-setup \
	$(patsubst $(OUT)/man/%,$(MANDIR)/man8/%,$(MANS)) $(BASHCOMPDIR)/xdpmirror \
	$(UNITDIR)/xdpmirror@.service

install: $(BIN) man ## binary, pair-setup, man pages, completion, systemd unit under DESTDIR/PREFIX
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -D -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/xdpmirror
	$(Q)install -D -m 0755 scripts/pair-setup.sh $(DESTDIR)$(SBINDIR)/xdpmirror-pair-setup
	$(Q)install -d -m 0755 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR)
	$(Q)install -m 0644 $(MANS) $(DESTDIR)$(MANDIR)/man8/
	$(Q)install -D -m 0644 completion/xdpmirror.bash $(DESTDIR)$(BASHCOMPDIR)/xdpmirror
	$(Q)sed 's|@XDPMIRROR@|$(SBINDIR)/xdpmirror|g' systemd/xdpmirror@.service.in \
		>$(DESTDIR)$(UNITDIR)/xdpmirror@.service
	$(Q)chmod 0644 $(DESTDIR)$(UNITDIR)/xdpmirror@.service

uninstall: ## remove what make install put in place (same DESTDIR and PREFIX)
	$(call msg,UNINSTALL,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(addprefix $(DESTDIR),$(INSTALLED))

format: ## reformat C sources with clang-format
	$(Q)clang-format -i bpf/*.c user/*/*.[ch] include/*.h tests/unit/*.[ch] tests/tools/*.c \
		tests/bpf/*.c tests/fuzz/*.[ch]

lint: ## clang-format check, cppcheck, and the layout rules of user/ (scripts/check-layout.py)
	$(Q)clang-format --dry-run --Werror bpf/*.c user/*/*.[ch] include/*.h tests/unit/*.[ch] \
		tests/tools/*.c tests/bpf/*.c tests/fuzz/*.[ch]
	$(Q)cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--suppress=missingIncludeSystem -Iinclude -Iuser -itests/bpf user/ tests/
	$(Q)scripts/check-layout.py

clean: ## remove build output
	$(call msg,CLEAN,$(OUT))
	$(Q)rm -rf $(OUT)

# ---- Fuzzing (docs/fuzzing.md) ---------------------------------------------------------------
# libFuzzer targets in tests/fuzz/, built with clang from a short, explicit list of sources each,
# all of them instrumented (build/fuzz/).  The same targets built with gcc's sanitizers and a
# replay main instead of libFuzzer (build/fuzz-replay/) make build/tests/test_fuzz_corpus, which
# `make test` runs over the committed corpus.
FUZZ_TARGETS := fuzz_nbd_request fuzz_frame fuzz_hello
FUZZ_SRCS_fuzz_nbd_request := $(wildcard user/nbd/*.c) tests/fuzz/fake_loop.c tests/fuzz/fake_log.c
FUZZ_SRCS_fuzz_frame := user/link/frame.c user/link/auth.c user/link/gate.c user/util/report.c \
	tests/fuzz/fake_log.c
# Libraries the targets link (the gate: libcrypto; its status report: json-c; the NBD server:
# GnuTLS).
FUZZ_LIBS := -lcrypto -ljson-c -lgnutls
FUZZ_SRCS_fuzz_hello := user/repl/hello.c user/repl/gen.c
FUZZ_RUNS ?= 10000000
FUZZ_DIR  := $(OUT)/fuzz
FUZZ_BINS := $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))
# The NBD server's byte and recv() limits, small enough for one connection to reach in a few KiB.
FUZZ_NBD_LIMITS := -DXM_NBD_MAX_WRITE_BYTES='(2ull << 10)' -DXM_NBD_MAX_QUEUED='(64u << 10)' \
	       -DXM_NBD_INBUF=1024u -DXM_NBD_RECV_BUDGET=4
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter -std=gnu11 \
	       -D_GNU_SOURCE -MMD -MP -Iinclude -Iuser -Itests/fuzz $(FUZZ_NBD_LIMITS)
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=all
REPLAY_DIR := $(OUT)/fuzz-replay
REPLAY_SRCS := $(sort $(foreach t,$(FUZZ_TARGETS),tests/fuzz/$(t).c $(FUZZ_SRCS_$(t))))
REPLAY_OBJS := $(patsubst %.c,$(REPLAY_DIR)/%.o,$(REPLAY_SRCS) tests/fuzz/replay.c)

.PHONY: fuzz fuzz-seed

fuzz: ## libFuzzer on NBD requests, frames and HELLOs, FUZZ_RUNS inputs each (default 10^7)
	$(Q)scripts/deps.sh fuzz
	$(Q)$(MAKE) $(FUZZ_BINS)
	$(Q)tests/fuzz/run.sh $(FUZZ_RUNS) $(FUZZ_TARGETS)

fuzz-seed: $(REPLAY_DIR)/gen_corpus ## write the fuzz seeds (seed-*) into tests/fuzz/corpus/
	$(Q)$< tests/fuzz/corpus

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(call msg,CC-FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

define FUZZ_TARGET_RULE
$(FUZZ_DIR)/$(1): $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,tests/fuzz/$(1).c $(FUZZ_SRCS_$(1)))
	$$(call msg,LD-FUZZ,$$@)
	$$(Q)$$(CLANG) $$(FUZZ_SAN) -fsanitize=fuzzer $$^ -o $$@ $$(FUZZ_LIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_TARGET_RULE,$(t))))

# Each target's entry point gets a name of its own, so one driver links all of them.
$(REPLAY_DIR)/tests/fuzz/fuzz_%.o: tests/fuzz/fuzz_%.c
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -DLLVMFuzzerTestOneInput=xm_fuzz_$* -c $< -o $@

$(REPLAY_DIR)/%.o: %.c
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -DXM_FUZZ_CORPUS='"$(CURDIR)/tests/fuzz/corpus"' \
		-c $< -o $@

$(OUT)/tests/test_fuzz_corpus: $(REPLAY_OBJS) | $(OUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(FUZZ_SAN) $^ -o $@ $(FUZZ_LIBS)

$(REPLAY_DIR)/gen_corpus: tests/fuzz/gen_corpus.c user/link/frame.c
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(FUZZ_CFLAGS) $^ -o $@

-include $(wildcard $(FUZZ_DIR)/obj/*/*/*.d $(REPLAY_DIR)/*/*/*.d $(REPLAY_DIR)/*.d)
# ---- end of fuzzing ---------------------------------------------------------------------------

-include $(wildcard $(OUT)/*.d $(OUT)/user/*/*.d $(OUT)/tests/*.d $(OUT)/tools/*.d)
