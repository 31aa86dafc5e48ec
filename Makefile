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

.PHONY: all deps run test test-unit test-integration asan bench profile fuzz clean install deb rpm
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
	$(MAKE) -j$(JOBS) $(B)/acemqd
	$(B)/acemqd -c etc/acemq.conf

# `make test`: dependencies, the normal build, the sanitizer build, then every test against both.
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)

test: deps
	$(MAKE) -j$(JOBS) all
	$(MAKE) -j$(JOBS) SAN=1 all
	sh tests/run.sh

asan:
	$(MAKE) SAN=1 all

bench: deps all
	sh tests/bench/run.sh

# `make profile`: perf and callgrind profiles of acemqd and its CPU use per thread with workers 1
# and 2 (tests/bench/profile.sh; PROFILE_OUT and PROFILE_SECONDS choose the directory and window).
profile: deps all
	sh tests/bench/profile.sh

fuzz: deps
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan

-include $(DEPFILES)

# ---- install and packages ----------------------------------------------------------------------
# `make install` (PREFIX=/usr/local, DESTDIR= for staging): the daemon, the operator tools, the
# configuration (never over an existing one), the systemd unit with its paths rewritten for PREFIX,
# the sysusers.d and tmpfiles.d snippets, the man pages. `make deb` and `make rpm` stage the same
# files with PREFIX=/usr and package them into build/ (packaging/ holds the metadata).
PREFIX      ?= /usr/local
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
MANDIR      ?= $(PREFIX)/share/man
INSTALL_BIN := $(B)/acemqd $(B)/acemq-token $(B)/acemq-passwd
MAN_PAGES   := docs/man/acemqd.8 docs/man/acemq.conf.5 docs/man/acemq-token.1

install: $(INSTALL_BIN)
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONFDIR)/acemq \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	install -m 0755 $(B)/acemqd $(DESTDIR)$(PREFIX)/sbin/acemqd
	install -m 0755 $(B)/acemq-token $(B)/acemq-passwd $(DESTDIR)$(PREFIX)/bin/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/acemq/acemq.conf ]; then \
	    echo "install: keeping the existing $(DESTDIR)$(SYSCONFDIR)/acemq/acemq.conf"; \
	else \
	    echo "install -m 0644 etc/acemq.conf $(DESTDIR)$(SYSCONFDIR)/acemq/acemq.conf"; \
	    install -m 0644 etc/acemq.conf $(DESTDIR)$(SYSCONFDIR)/acemq/acemq.conf; \
	fi
	sed -e 's#/usr/sbin/acemqd#$(PREFIX)/sbin/acemqd#' -e 's#/etc/acemq/#$(SYSCONFDIR)/acemq/#' \
	    systemd/acemqd.service > $(DESTDIR)$(UNITDIR)/acemqd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/acemqd.service
	install -m 0644 systemd/acemq.sysusers $(DESTDIR)$(SYSUSERSDIR)/acemq.conf
	install -m 0644 systemd/acemq.tmpfiles $(DESTDIR)$(TMPFILESDIR)/acemq.conf
	for m in $(MAN_PAGES); do \
	    d=$(DESTDIR)$(MANDIR)/man$${m##*.}; install -d $$d && install -m 0644 $$m $$d/ || exit 1; \
	done

# The .deb is assembled with dpkg-deb alone (no debian/ build tree): a staged install, stripped
# binaries, gzipped man pages, and packaging/debian/ for control, conffiles and maintainer scripts.
DEB_ARCH = $(shell dpkg --print-architecture)
DEB_ROOT := $(B)/pkg/deb/acemq

deb: $(INSTALL_BIN)
	rm -rf $(DEB_ROOT)
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr \
	    SYSCONFDIR=/etc UNITDIR=/lib/systemd/system SYSUSERSDIR=/usr/lib/sysusers.d \
	    TMPFILESDIR=/usr/lib/tmpfiles.d MANDIR=/usr/share/man
	strip --strip-unneeded --remove-section=.comment --remove-section=.note \
	    $(DEB_ROOT)/usr/sbin/acemqd $(DEB_ROOT)/usr/bin/acemq-*
	gzip -9n $(DEB_ROOT)/usr/share/man/man*/*
	install -d $(DEB_ROOT)/usr/share/doc/acemq $(DEB_ROOT)/DEBIAN
	install -m 0644 README.md docs/configuration.md docs/operations.md $(DEB_ROOT)/usr/share/doc/acemq/
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
	    -e "s/@SIZE@/$$(du -sk $(DEB_ROOT) | cut -f1)/" packaging/debian/control.in \
	    > $(DEB_ROOT)/DEBIAN/control
	install -m 0644 packaging/debian/conffiles $(DEB_ROOT)/DEBIAN/conffiles
	install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm \
	    $(DEB_ROOT)/DEBIAN/
	dpkg-deb --root-owner-group --build $(DEB_ROOT) $(B)/acemq_$(VERSION)_$(DEB_ARCH).deb

# rpmbuild runs packaging/acemq.spec against this tree. Where systemd-rpm-macros is missing
# (Debian), the shim in packaging/rpm/ defines the few macros the spec uses; --nodeps because the
# BuildRequires name rpm packages that an rpm database on Debian does not know.
RPM_TOP := $(abspath $(B)/pkg/rpm)

rpm: $(INSTALL_BIN)
	rm -rf $(RPM_TOP)
	mkdir -p $(RPM_TOP)
	shim=$$(rpm --eval '%{?_unitdir}' | grep -q . || echo "--load packaging/rpm/macros.systemd-shim"); \
	rpmbuild -bb --nodeps --quiet $$shim --define "_topdir $(RPM_TOP)" \
	    --define "acemq_src $(CURDIR)" --define "acemq_version $(VERSION)" packaging/acemq.spec
	cp $(RPM_TOP)/RPMS/*/acemq-$(VERSION)-1.*.rpm $(B)/
