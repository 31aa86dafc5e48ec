# acemq: one Makefile for everything. Sources are found by directory so that a new file in a
# module needs no edit here:
#   proto/ tls/ ace/ broker/ (except broker/main.c)  -> build/libacemq.a
#   broker/main.c                                    -> build/acemqd
#   tools/<name>/*.c                                 -> build/acemq-<name>
#   tests/unit/test_*.c                              -> build/tests/test_* (one process per file)
# `make SAN=1` builds the same tree with AddressSanitizer and UBSan into build-asan/.

CC      ?= gcc
ifeq ($(origin CC),default)
CC      := gcc
endif
SAN     ?= 0
ifeq ($(SAN),1)
B       := build-asan
SANFLAGS:= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     := -O1
else
B       := build
SANFLAGS:=
OPT     := -O2
endif

LLHTTP_DIR := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp
VERSION    := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

CPPFLAGS += -I. -I$(LLHTTP_INC) -D_GNU_SOURCE -DACEMQ_VERSION='"$(VERSION)"'
CFLAGS   += -std=c11 $(OPT) -g -Wall -Wextra -Wshadow -pthread $(SANFLAGS)
LDFLAGS  += -pthread $(SANFLAGS)
LDLIBS   += -luv -lmbedtls -lmbedx509 -lmbedcrypto -lcbor -ljansson -lsodium -lm

LIB_SRC  := $(wildcard proto/*.c tls/*.c ace/*.c) $(filter-out broker/main.c,$(wildcard broker/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)
LLHTTP_OBJ := $(B)/obj/llhttp/api.o $(B)/obj/llhttp/http.o $(B)/obj/llhttp/llhttp.o
TOOLS    := $(notdir $(patsubst %/,%,$(wildcard tools/*/)))
TOOL_BIN := $(TOOLS:%=$(B)/acemq-%)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
DEPFILES := $(shell find $(B)/obj -name '*.d' 2>/dev/null)

.PHONY: all deps run test test-unit test-integration asan bench fuzz clean install deb rpm
all: $(B)/acemqd $(TOOL_BIN) $(UNIT_BIN)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

# llhttp is Debian's C source (node-llhttp), compiled in as the guide requires.
$(B)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) -I$(LLHTTP_INC) -std=c11 $(OPT) -g -Wall -Wno-unused-parameter $(SANFLAGS) -c $< -o $@

$(B)/libacemq.a: $(LIB_OBJ) $(LLHTTP_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/acemqd: $(B)/obj/broker/main.o $(B)/libacemq.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

define TOOL_RULE
$(B)/acemq-$(1): $(patsubst %.c,$(B)/obj/%.o,$(wildcard tools/$(1)/*.c)) $(B)/libacemq.a
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call TOOL_RULE,$(t))))

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/libacemq.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@sh tools/install-deps.sh

run: deps
	$(MAKE) $(B)/acemqd
	$(B)/acemqd -c etc/acemq.conf

# `make test`: dependencies, the normal build, the sanitizer build, then every test against both.
test: deps
	$(MAKE) all
	$(MAKE) SAN=1 all
	sh tests/run.sh

asan:
	$(MAKE) SAN=1 all

bench: deps all
	sh tests/bench/run.sh

fuzz: deps
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan

-include $(DEPFILES)
