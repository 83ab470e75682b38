# sipha — top-level build.  `make` builds everything, `make test` runs every
# test, `make deps` installs the Debian packages, `make demo` shows the pair.
#
# Sources are picked up by directory: a new .c file under userspace/<module>/
# or kernel-helpers/ joins libsipha.a, a new tests/unit/test_*.c becomes a
# sanitizer-built cmocka binary, a new bpf/*.bpf.c gets an object and a
# skeleton, a test tool tests/tools/NAME.c (or a directory tests/tools/NAME/
# of .c files, one with main) becomes build/tests/tools/NAME.  Nobody edits
# this file to add a module.

B       := build
CLANG   ?= clang
BPFTOOL ?= bpftool

PKGS     := libosip2 liburing libbpf libmnl libnl-route-3.0 inih jansson libsystemd libsodium libcap
PKG_CF   := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CPPFLAGS += -D_GNU_SOURCE -Iuserspace -Ikernel-helpers -Ibpf -I$(B) $(PKG_CF)
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -fno-strict-aliasing
LDLIBS   += -Wl,--as-needed $(PKG_LIBS) -lpthread
SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

LIB_DIRS := userspace/core userspace/sip userspace/cc userspace/server userspace/ha userspace/xdp kernel-helpers
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)
SAN_OBJ  := $(LIB_SRC:%.c=$(B)/san/%.o)

BPF_SRC  := $(wildcard bpf/*.bpf.c)
BPF_OBJ  := $(BPF_SRC:bpf/%.bpf.c=$(B)/%.bpf.o)
SKELS    := $(BPF_SRC:bpf/%.bpf.c=$(B)/%.skel.h)

LOAD_SRC := $(wildcard userspace/sipha-load/*.c)
LOAD_OBJ := $(LOAD_SRC:%.c=$(B)/obj/%.o)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:%.c=$(B)/%)
BPFT_SRC := $(wildcard tests/bpf/test_*.c)
BPFT_BIN := $(BPFT_SRC:%.c=$(B)/%)
# A tool is one file, tests/tools/NAME.c, or a directory tests/tools/NAME/
# whose .c files all link into the one program.
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_DIRS := $(sort $(patsubst %/,%,$(dir $(wildcard tests/tools/*/*.c))))
TOOL_BIN := $(TOOL_SRC:%.c=$(B)/%) $(TOOL_DIRS:%=$(B)/%)
ifneq ($(filter $(TOOL_DIRS),$(TOOL_SRC:%.c=%)),)
$(error both tests/tools/NAME.c and tests/tools/NAME/ for $(filter $(TOOL_DIRS),$(TOOL_SRC:%.c=%)))
endif

# Quiet by default: one line per file.  `make V=1` shows the commands.
V ?= 0
ifeq ($(V),0)
Q = @
msg = @printf '  %-6s %s\n' $(1) $(2);
else
Q =
msg =
endif

BINS := $(B)/siphad $(B)/siphactl $(B)/sipha-load
# The daemon again with ASan/UBSan: the integration tests run this one.
SAN_BINS := $(B)/siphad-san

.PHONY: all tests test unit deps demo clean format install uninstall
.SECONDARY:
all: $(BINS) $(SAN_BINS) $(BPF_OBJ) tests
tests: $(UNIT_BIN) $(BPFT_BIN) $(TOOL_BIN)

# --- BPF: .bpf.c -> .bpf.o -> .skel.h (libbpf-bootstrap's chain) ---------------
$(B)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h)
	@mkdir -p $(@D)
	$(call msg,BPF,$@)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror \
		-I/usr/include/$(shell gcc -dumpmachine) -Ibpf -c $< -o $@

$(B)/%.skel.h: $(B)/%.bpf.o
	$(call msg,SKEL,$@)$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

# --- user space ----------------------------------------------------------------
$(B)/obj/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(call msg,CC,$@)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/san/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(call msg,CC,$@)$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN) -MMD -MP -c $< -o $@

$(B)/libsipha.a: $(LIB_OBJ)
	@rm -f $@
	$(call msg,AR,$@)ar rcs $@ $^

$(B)/libsipha-san.a: $(SAN_OBJ)
	@rm -f $@
	$(call msg,AR,$@)ar rcs $@ $^

$(B)/siphad: $(B)/obj/userspace/siphad.o $(B)/libsipha.a
	$(call msg,LD,$@)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/siphad-san: $(B)/san/userspace/siphad.o $(B)/libsipha-san.a
	$(call msg,LD,$@)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

$(B)/siphactl: $(B)/obj/userspace/siphactl.o $(B)/libsipha.a
	$(call msg,LD,$@)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/sipha-load: $(LOAD_OBJ) $(B)/libsipha.a
	$(call msg,LD,$@)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests: sanitizers on, linked against the sanitizer build of the library.
$(B)/tests/unit/%: $(B)/san/tests/unit/%.o $(B)/libsipha-san.a
	@mkdir -p $(@D)
	$(call msg,LD,$@)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS) -lcmocka

# BPF tests run the real object through BPF_PROG_TEST_RUN; sanitizers on too.
$(B)/tests/bpf/%: $(B)/san/tests/bpf/%.o $(B)/libsipha-san.a $(BPF_OBJ)
	@mkdir -p $(@D)
	$(call msg,LD,$@)$(CC) $(CFLAGS) $(SAN) -o $@ $(filter-out $(BPF_OBJ),$(filter %.o %.a,$^)) $(LDLIBS) -lcmocka

$(B)/tests/tools/%: $(B)/obj/tests/tools/%.o $(B)/libsipha.a
	@mkdir -p $(@D)
	$(call msg,LD,$@)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# A tool in a directory: one explicit rule each, its objects from $(B)/obj/%.o.
define TOOL_DIR_RULE
$(B)/$(1): $(patsubst %.c,$(B)/obj/%.o,$(wildcard $(1)/*.c)) $(B)/libsipha.a
	@mkdir -p $$(@D)
	$$(call msg,LD,$$@)$$(CC) $$(CFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach d,$(TOOL_DIRS),$(eval $(call TOOL_DIR_RULE,$(d))))

# --- fuzzing (clang libFuzzer) ------------------------------------------------------
# `make fuzz` builds each tests/fuzz/fuzz_NAME.c with libFuzzer, ASan and UBSan
# (the library again, with clang's coverage) and runs it FUZZ_SECONDS from the
# seeds in tests/fuzz/corpus/NAME/.  New inputs go to build/fuzz/corpus-NAME/,
# findings to build/fuzz/NAME-crash-*.  `make test` needs none of this: it
# replays the seeds through tests/unit/test_fuzz_corpus.c.
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 70000
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS  := -O1 -g -std=gnu11 -fno-strict-aliasing -fno-omit-frame-pointer \
		-fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJ     := $(LIB_SRC:%.c=$(B)/fuzz/obj/%.o)

$(B)/fuzz/obj/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(call msg,CLANG,$@)$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(B)/fuzz/libsipha-fuzz.a: $(FUZZ_OBJ)
	@rm -f $@
	$(call msg,AR,$@)ar rcs $@ $^

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(B)/fuzz/libsipha-fuzz.a
	$(call msg,FUZZ,$@)$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
		$(B)/fuzz/libsipha-fuzz.a $(LDLIBS)

.PHONY: fuzz
fuzz: $(FUZZ_NAMES:%=$(B)/fuzz/fuzz_%)
	@for n in $(FUZZ_NAMES); do \
		mkdir -p $(B)/fuzz/corpus-$$n; \
		echo "fuzz $$n: $(FUZZ_SECONDS) s"; \
		$(B)/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) \
			-print_final_stats=1 -artifact_prefix=$(B)/fuzz/$$n- \
			$(B)/fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; \
	done

# --- install ---------------------------------------------------------------------------
# `make install DESTDIR=... PREFIX=/usr`: the programs, the systemd unit
# siphad@.service, the example configuration, the sysctl and sysusers
# drop-ins, man pages and bash completion (the list: INSTALLED).  The BPF
# object is not installed: siphad carries it in its skeleton
# (sipha_xdp.skel.h).  Nothing is run: no group made, no unit enabled, no
# sysctl applied (README.md, "Install").  `make uninstall` with the same
# variables removes exactly INSTALLED, and sipha's own directories once
# they are empty.
PREFIX      ?= /usr/local
SBINDIR     ?= $(PREFIX)/sbin
LIBDIR      ?= $(PREFIX)/lib
PKGLIBDIR   ?= $(LIBDIR)/sipha
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
UNITDIR     ?= $(LIBDIR)/systemd/system
SYSCTLDIR   ?= $(LIBDIR)/sysctl.d
SYSUSERSDIR ?= $(LIBDIR)/sysusers.d
SYSCONFDIR  ?= /etc

INST_BINS := siphad siphactl sipha-load
MANPAGES  := $(wildcard docs/man/*.[1-8])
MAN_DEST  := $(foreach m,$(MANPAGES),$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))
INSTALLED := $(INST_BINS:%=$(SBINDIR)/%) $(PKGLIBDIR)/sipha-bpffs \
	$(SYSCONFDIR)/sipha/example.conf $(UNITDIR)/siphad@.service \
	$(SYSCTLDIR)/60-sipha.conf $(SYSUSERSDIR)/sipha.conf $(BASHCOMPDIR)/siphactl $(MAN_DEST)

install: $(BINS)
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))install -d -m 0755 $(DESTDIR)$(SBINDIR)
	$(Q)for b in $(INST_BINS); do install -m 0755 $(B)/$$b $(DESTDIR)$(SBINDIR)/$$b || exit 1; done
	$(Q)install -D -m 0755 dist/sipha-bpffs $(DESTDIR)$(PKGLIBDIR)/sipha-bpffs
	$(Q)install -D -m 0644 dist/example.conf $(DESTDIR)$(SYSCONFDIR)/sipha/example.conf
	$(Q)install -d -m 0755 $(DESTDIR)$(UNITDIR)
	$(Q)sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@LIBEXECDIR@|$(PKGLIBDIR)|g' \
		-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/siphad@.service.in \
		>$(DESTDIR)$(UNITDIR)/siphad@.service && chmod 0644 $(DESTDIR)$(UNITDIR)/siphad@.service
	$(Q)install -D -m 0644 dist/60-sipha.conf $(DESTDIR)$(SYSCTLDIR)/60-sipha.conf
	$(Q)install -D -m 0644 dist/sipha.sysusers $(DESTDIR)$(SYSUSERSDIR)/sipha.conf
	$(Q)install -D -m 0644 dist/siphactl.bash-completion $(DESTDIR)$(BASHCOMPDIR)/siphactl
	$(Q)for m in $(MANPAGES); do \
		install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/} || exit 1; done

uninstall:
	$(call msg,RM,$(DESTDIR)$(PREFIX))for f in $(INSTALLED); do rm -f $(DESTDIR)$$f; done
	$(Q)for d in $(PKGLIBDIR) $(SYSCONFDIR)/sipha; do \
		[ ! -d $(DESTDIR)$$d ] || rmdir --ignore-fail-on-non-empty $(DESTDIR)$$d; done

# --- the two commands of the README ----------------------------------------------
deps:
	@scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory all
	@tests/run.sh

unit: all
	@tests/run.sh unit

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
