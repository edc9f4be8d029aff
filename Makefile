# mb - one non-recursive Makefile: libmb.a, the tools, tests, man pages, install, check.
#
#   make                 build build/libmb.a and bin/mb-*
#   make check           install dependencies if missing, build, run every test under prove
#   make check-long      the long-running tests (with the fuzz targets, FUZZ_SECONDS each)
#   make check-slurm     the slurm/ scripts under a local single-node Slurm (as root)
#   make fuzz            libFuzzer targets (clang, ASan+UBSan) and corpora in build-fuzz/
#   make SANITIZE=1 ...  the tools and tests built with ASan+UBSan
#   make demo            the README's main job on the embedded default corpus
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make clean

BUILD   ?= build
PREFIX  ?= /usr/local
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror
DEPFLAGS = -MMD -MP

include mk/detect.mk

EXT_CFLAGS := $(MPI_CFLAGS) $(HDF5_CFLAGS) $(BLAS_CFLAGS) $(YAML_CFLAGS) $(PCRE2_CFLAGS) \
              $(UTF8_CFLAGS) $(JSON_CFLAGS)
EXT_LIBS   := $(HDF5_LIBS) $(MPI_LIBS) $(BLAS_LIBS) $(YAML_LIBS) $(PCRE2_LIBS) $(UTF8_LIBS) \
              $(JSON_LIBS) $(ZLIB_LIBS) $(DNNL_LIBS) -lpthread -lm
# make SANITIZE=1: the tools and tests with AddressSanitizer and UBSan (any UB aborts)
ifdef SANITIZE
override CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=address,undefined
endif
# OpenMP threads the CPU kernels (common/kern/cpu); -pthread for the tools' own threads
ALL_CFLAGS  = -std=c17 -D_GNU_SOURCE -pthread -fopenmp $(WARN) $(CFLAGS) -Icommon -I$(BUILD) \
              $(EXT_CFLAGS)
# -rdynamic: backtraces (the cpu-guarded backend's) name the functions
LDFLAGS_ALL = -pthread -fopenmp -rdynamic $(LDFLAGS)

ifndef V
QUIET_CC   = @echo '   CC  ' $@;
QUIET_AR   = @echo '   AR  ' $@;
QUIET_LINK = @echo '   LINK' $@;
QUIET_GEN  = @echo '   GEN ' $@;
endif

# every .c under common/ is part of libmb.a (kern/cpu and the like sit one level deeper)
LIB_SRCS := $(sort $(wildcard common/*/*.c common/*/*/*.c))
LIB_OBJS := $(patsubst common/%.c,%.o,$(LIB_SRCS))

OBJS := $(addprefix $(BUILD)/,$(LIB_OBJS))
LIB  := $(BUILD)/libmb.a

# a tool is a top-level mb-*/ folder with a main.c; all its .c files link into bin/mb-*
TOOLS := $(patsubst %/main.c,%,$(sort $(wildcard mb-*/main.c)))
TOOL_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(foreach t,$(TOOLS),$(wildcard $(t)/*.c)))

UNIT_TESTS := $(basename $(notdir $(sort $(wildcard tests/unit/*.c))))
UNIT_BINS  := $(addprefix $(BUILD)/tests/unit/,$(addsuffix .t,$(UNIT_TESTS)))
TEST_LIB_OBJS := $(BUILD)/tests/lib/tap.o $(BUILD)/tests/lib/oracle.o

all: $(addprefix bin/,$(TOOLS))

$(BUILD)/FLAGS: FORCE
	@if [ -n "$(MISSING_DEPS)" ]; then \
	  echo "mb: missing libraries ($(MISSING_DEPS)): run 'make deps' (as root) first" >&2; exit 1; fi
	@mkdir -p $(@D)
	@echo '$(CC) $(ALL_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS)' >$@

# version.h is rewritten only when the version or the flags change
$(BUILD)/version.h: FORCE
	@mkdir -p $(@D)
	@v=$$(scripts/version.sh); \
	 printf '#define MB_VERSION "%s"\n#define MB_BUILD_FLAGS "%s"\n' "$$v" '$(CFLAGS)' >$@.new; \
	 cmp -s $@.new $@ && rm -f $@.new || mv $@.new $@

$(BUILD)/core/cli.o: $(BUILD)/version.h

# sqrtf without errno, so GCC vectorises AdamW (IEEE sqrt either way: same bits, 4x faster);
# -fsimd-cost-model is GCC's, so a clang build (make fuzz) leaves it out
$(BUILD)/kern/cpu/adamw.o: ALL_CFLAGS += -fno-math-errno \
    $(if $(filter clang%,$(notdir $(CC))),,-fsimd-cost-model=unlimited)

$(BUILD)/%.o: common/%.c $(BUILD)/FLAGS
	@mkdir -p $(@D)
	$(QUIET_CC)$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(LIB): $(OBJS)
	$(QUIET_AR)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/mb-%.o: mb-%.c $(BUILD)/FLAGS $(BUILD)/version.h
	@mkdir -p $(@D)
	$(QUIET_CC)$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

define tool_rule
bin/$(1): $$(filter $(BUILD)/$(1)/%,$$(TOOL_OBJS)) $$(LIB)
	@mkdir -p $$(@D)
	$$(QUIET_LINK)$$(CC) $$(LDFLAGS_ALL) -o $$@ $$(filter %.o,$$^) $$(LIB) $$(EXT_LIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rule,$(t))))

$(BUILD)/tests/%.o: tests/%.c $(BUILD)/FLAGS
	@mkdir -p $(@D)
	$(QUIET_CC)$(CC) $(ALL_CFLAGS) -I. $(DEPFLAGS) -c -o $@ $<

$(BUILD)/tests/unit/%.t: $(BUILD)/tests/unit/%.o $(TEST_LIB_OBJS) $(LIB)
	$(QUIET_LINK)$(CC) $(LDFLAGS_ALL) -o $@ $< $(TEST_LIB_OBJS) $(LIB) $(EXT_LIBS)

HELPER_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(sort $(wildcard tests/helpers/*.c)))

$(BUILD)/tests/helpers/%: $(BUILD)/tests/helpers/%.o $(LIB)
	$(QUIET_LINK)$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB) $(EXT_LIBS)

tests-build: all $(UNIT_BINS) $(HELPER_BINS)

# ---- tests ---------------------------------------------------------------
SHELL_TESTS = $(sort $(wildcard tests/tools/t*.sh))
LONG_TESTS  = $(sort $(wildcard tests/long/t*.sh))
SLURM_TESTS = $(sort $(wildcard tests/slurm/t*.sh))

deps:
	@scripts/install-deps.sh

deps-fuzz:
	@scripts/install-deps.sh --fuzz

# ---- fuzzing: libFuzzer targets tests/fuzz/fuzz_*.c, built with clang, ASan and UBSan ----
# Everything, libmb.a included, is compiled by clang into its own folder $(FUZZ_BUILD);
# the seed corpora are made there from the test suite's files (tests/fuzz/make-corpus.sh,
# which uses the gcc build). -Werror stays off: clang's warnings are not GCC's.
FUZZ_BUILD   ?= build-fuzz
FUZZ_CC      ?= clang
FUZZ_TARGETS := $(filter-out fuzz_common,$(basename $(notdir $(sort $(wildcard tests/fuzz/fuzz_*.c)))))
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_BINS    := $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS))
# mb-ckpt's subcommands (all but main.c) link into the checkpoint target
CKPT_TOOL_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out mb-ckpt/main.c,$(wildcard mb-ckpt/*.c)))

fuzz: deps-fuzz tests-build
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) WARN='-Wall -Wextra' \
	  CFLAGS='-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN)' fuzz-bins
	@scripts/fetch-test-data.sh
	@tests/fuzz/make-corpus.sh $(FUZZ_BUILD)

fuzz-bins: $(FUZZ_BINS)

$(BUILD)/fuzz/%.o: tests/fuzz/%.c $(BUILD)/FLAGS
	@mkdir -p $(@D)
	$(QUIET_CC)$(CC) $(ALL_CFLAGS) -I. $(DEPFLAGS) -c -o $@ $<

$(BUILD)/fuzz/fuzz_ckpt: $(CKPT_TOOL_OBJS)
$(BUILD)/fuzz/%: $(BUILD)/fuzz/%.o $(BUILD)/fuzz/fuzz_common.o $(LIB)
	$(QUIET_LINK)$(CC) $(LDFLAGS_ALL) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $(filter %.o,$^) \
	  $(LIB) $(EXT_LIBS)

# check and check-long install what is missing first, then re-run make so that the
# library probe in mk/detect.mk sees the freshly installed packages.
check: deps
	@$(MAKE) --no-print-directory check-run

# The tools' tests run once, on the cpu-guarded backend (kern/ops.h): a host pointer given
# to an op, or host code touching backend memory, fails them. MB_DEVICE=cpu: on the CPU's.
MB_DEVICE ?= cpu-guarded
check-run: tests-build check-layers
	@scripts/fetch-test-data.sh
	MB_DEVICE=$(MB_DEVICE) prove --exec tests/run-test.sh -j2 $(UNIT_BINS) $(SHELL_TESTS)

check-long: deps-fuzz
	@$(MAKE) --no-print-directory check-long-run

check-long-run: tests-build fuzz
	@scripts/fetch-test-data.sh
	prove --exec tests/run-test.sh $(LONG_TESTS)

# Slurm from Debian when missing, ../shared/tools/slurm-local-up.sh, the tests, and
# slurm-local-down.sh unless Slurm was up before (scripts/slurm-local.sh)
check-slurm: deps
	@scripts/slurm-local.sh install
	@$(MAKE) --no-print-directory check-slurm-run

check-slurm-run: tests-build
	@scripts/fetch-test-data.sh
	@scripts/slurm-local.sh run prove --exec tests/run-test.sh $(SLURM_TESTS)

.PHONY: check-slurm check-slurm-run

check-layers:
	@scripts/check-layers.sh

test: check

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@bench/preprocess
	@bench/train_cpu
	@bench/convert
	@bench/finetune

# ---- install -------------------------------------------------------------
INSTALL ?= install
MANPAGES := $(wildcard man/*.1)

install: all
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	$(INSTALL) -m 755 $(addprefix bin/,$(TOOLS)) $(DESTDIR)$(PREFIX)/bin/
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/share/mb/recipes
	$(INSTALL) -m 644 recipes/*.yaml $(DESTDIR)$(PREFIX)/share/mb/recipes/
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/share/mb/slurm
	@# sbatch runs a copy of a script: it is told where the tools are installed
	@for s in slurm/*.sh; do \
	  sed "s|@MB_BINDIR@|$(PREFIX)/bin|g" $$s >$(DESTDIR)$(PREFIX)/share/mb/slurm/$$(basename $$s) && \
	  chmod 755 $(DESTDIR)$(PREFIX)/share/mb/slurm/$$(basename $$s) || exit 1; \
	done
	@v=$$(scripts/version.sh); d=$$(date -u +%Y-%m-%d); for m in $(MANPAGES); do \
	  sed -e "s/@VERSION@/$$v/g" -e "s/@DATE@/$$d/g" $$m >$(DESTDIR)$(PREFIX)/share/man/man1/$$(basename $$m); \
	done

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD) bin

FORCE:

# keep test objects between runs (they are intermediate files of pattern chains)
.SECONDARY:

.PHONY: all check check-run check-long check-long-run check-layers clean deps demo bench install test tests-build FORCE \
        fuzz fuzz-bins deps-fuzz

-include $(OBJS:.o=.d) $(TOOL_OBJS:.o=.d) $(UNIT_BINS:.t=.d) $(HELPER_BINS:=.d) $(TEST_LIB_OBJS:.o=.d) \
         $(FUZZ_BINS:=.d)
