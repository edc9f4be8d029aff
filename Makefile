# mb - one non-recursive Makefile: libmb.a, the tools, tests, man pages, install, check.
#
#   make                 build build/libmb.a and bin/mb-*
#   make check           install dependencies if missing, build, run every test under prove
#   make check-long      the long-running tests
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

EXT_CFLAGS := $(MPI_CFLAGS) $(PCRE2_CFLAGS) $(UTF8_CFLAGS) $(JSON_CFLAGS)
EXT_LIBS   := $(MPI_LIBS) $(PCRE2_LIBS) $(UTF8_LIBS) $(JSON_LIBS) $(ZLIB_LIBS) -lpthread -lm
ALL_CFLAGS  = -std=c17 -D_GNU_SOURCE -pthread $(WARN) $(CFLAGS) -Icommon -I$(BUILD) $(EXT_CFLAGS)

ifndef V
QUIET_CC   = @echo '   CC  ' $@;
QUIET_AR   = @echo '   AR  ' $@;
QUIET_LINK = @echo '   LINK' $@;
QUIET_GEN  = @echo '   GEN ' $@;
endif

LIB_OBJS += core/cli.o
LIB_OBJS += core/dtype.o
LIB_OBJS += core/err.o
LIB_OBJS += core/fs.o
LIB_OBJS += core/hash.o
LIB_OBJS += core/json.o
LIB_OBJS += core/log.o
LIB_OBJS += core/mem.o
LIB_OBJS += core/progress.o
LIB_OBJS += core/str.o
LIB_OBJS += core/time.o
LIB_OBJS += core/tool.o
LIB_OBJS += core/utf8.o
LIB_OBJS += dist/comm.o
LIB_OBJS += io/idx_reader.o
LIB_OBJS += io/idx_writer.o
LIB_OBJS += io/jsonl.o
LIB_OBJS += io/lines.o
LIB_OBJS += tok/added.o
LIB_OBJS += tok/bpe.o
LIB_OBJS += tok/bytelevel.o
LIB_OBJS += tok/load.o
LIB_OBJS += tok/normalize.o
LIB_OBJS += tok/postproc.o
LIB_OBJS += tok/pretok.o
LIB_OBJS += tok/regex.o
LIB_OBJS += tok/tokenizer.o
LIB_OBJS += tok/train_bpe.o

OBJS := $(addprefix $(BUILD)/,$(LIB_OBJS))
LIB  := $(BUILD)/libmb.a

TOOLS := mb-preprocess
PREPROCESS_OBJS := $(addprefix $(BUILD)/mb-preprocess/,main.o pipeline.o split.o merge.o)

UNIT_TESTS := core_hash core_utf8 io_idx io_lines tok_bytelevel
UNIT_BINS  := $(addprefix $(BUILD)/tests/unit/,$(addsuffix .t,$(UNIT_TESTS)))
TAP_OBJ    := $(BUILD)/tests/lib/tap.o

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

$(BUILD)/%.o: common/%.c $(BUILD)/FLAGS
	@mkdir -p $(@D)
	$(QUIET_CC)$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(LIB): $(OBJS)
	$(QUIET_AR)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/mb-preprocess/%.o: mb-preprocess/%.c $(BUILD)/FLAGS $(BUILD)/version.h
	@mkdir -p $(@D)
	$(QUIET_CC)$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

bin/mb-preprocess: $(PREPROCESS_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(QUIET_LINK)$(CC) -pthread -o $@ $(PREPROCESS_OBJS) $(LIB) $(EXT_LIBS)

$(BUILD)/tests/%.o: tests/%.c $(BUILD)/FLAGS
	@mkdir -p $(@D)
	$(QUIET_CC)$(CC) $(ALL_CFLAGS) -I. $(DEPFLAGS) -c -o $@ $<

$(BUILD)/tests/unit/%.t: $(BUILD)/tests/unit/%.o $(TAP_OBJ) $(LIB)
	$(QUIET_LINK)$(CC) -pthread -o $@ $< $(TAP_OBJ) $(LIB) $(EXT_LIBS)

HELPER_BINS := $(BUILD)/tests/helpers/idx_dump

$(BUILD)/tests/helpers/%: $(BUILD)/tests/helpers/%.o $(LIB)
	$(QUIET_LINK)$(CC) -pthread -o $@ $< $(LIB) $(EXT_LIBS)

tests-build: all $(UNIT_BINS) $(HELPER_BINS)

# ---- tests ---------------------------------------------------------------
SHELL_TESTS = $(sort $(wildcard tests/tools/t*.sh))
LONG_TESTS  = $(sort $(wildcard tests/long/t*.sh))

deps:
	@scripts/install-deps.sh

# check and check-long install what is missing first, then re-run make so that the
# library probe in mk/detect.mk sees the freshly installed packages.
check: deps
	@$(MAKE) --no-print-directory check-run

check-run: tests-build check-layers
	@scripts/fetch-test-data.sh
	prove --exec tests/run-test.sh -j2 $(UNIT_BINS) $(SHELL_TESTS)

check-long: deps
	@$(MAKE) --no-print-directory check-long-run

check-long-run: tests-build
	@scripts/fetch-test-data.sh
	prove --exec tests/run-test.sh $(LONG_TESTS)

check-layers:
	@scripts/check-layers.sh

test: check

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@bench/preprocess

# ---- install -------------------------------------------------------------
INSTALL ?= install
MANPAGES := $(wildcard man/*.1)

install: all
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	$(INSTALL) -m 755 $(addprefix bin/,$(TOOLS)) $(DESTDIR)$(PREFIX)/bin/
	@v=$$(scripts/version.sh); d=$$(date -u +%Y-%m-%d); for m in $(MANPAGES); do \
	  sed -e "s/@VERSION@/$$v/g" -e "s/@DATE@/$$d/g" $$m >$(DESTDIR)$(PREFIX)/share/man/man1/$$(basename $$m); \
	done

clean:
	rm -rf $(BUILD) bin

FORCE:

# keep test objects between runs (they are intermediate files of pattern chains)
.SECONDARY:

.PHONY: all check check-run check-long check-long-run check-layers clean deps demo bench install test tests-build FORCE

-include $(OBJS:.o=.d) $(PREPROCESS_OBJS:.o=.d)
