# Maestro: make / make run / make test / make bench
#
# The module is built against Debian's nginx-dev sources with the same
# configure flags as Debian's /usr/sbin/nginx, so the .so loads into it.

SHELL       := /bin/bash
NGX_SRC     ?= /usr/share/nginx/src
NGINX       ?= /usr/sbin/nginx
BUILD       ?= build
ABS_BUILD   := $(abspath $(BUILD))
CC          ?= cc

# IBM Carbon's packages run @ibm/telemetry-js from their postinstall: it
# reads the repository's git remote, branches and packages and exports them
# when it thinks it runs in CI or a container, from detached processes that
# outlive the build. Every npm install and build under make is opted out.
export IBM_TELEMETRY_DISABLED := true
export IBM_TELEMETRY_EXPORT_DISABLED := true

CORE_DIR    := ngx_maestro_module/core
CORE_SUBDIRS := $(CORE_DIR) $(CORE_DIR)/store $(CORE_DIR)/flow \
                $(CORE_DIR)/llm $(CORE_DIR)/text $(CORE_DIR)/access
CORE_SRC    := $(foreach d,$(CORE_SUBDIRS),$(wildcard $(d)/*.c))
CORE_HDR    := $(foreach d,$(CORE_SUBDIRS),$(wildcard $(d)/*.h)) \
               plugins/include/maestro_plugin.h
CORE_INC    := $(CORE_SUBDIRS:%=-I%)
GLUE_SRC    := $(wildcard ngx_maestro_module/*.c ngx_maestro_module/*.h)
LIBS        := -llmdb -ljansson -lcurl -lpcre2-8 -lutf8proc -lcrypto -lz -ldl \
               -lpthread -lm

WARN        := -Wall -Wextra -Wno-unused-parameter -Wpointer-arith -Werror
CFLAGS      ?= -O2 -g
CFLAGS      += -std=gnu11 -D_GNU_SOURCE -fPIC $(WARN)
# unit tests run under AddressSanitizer + LeakSanitizer
SAN         ?= -fsanitize=address,undefined -fno-omit-frame-pointer

PLUGINS     := $(patsubst plugins/%/,%,$(filter-out plugins/include/,\
                 $(sort $(dir $(wildcard plugins/*/*.c)))))
PLUGIN_SO   := $(PLUGINS:%=$(BUILD)/plugins/%.so)
FIXTURES    := $(patsubst tests/fixtures/plugins/%.c,%,\
                 $(wildcard tests/fixtures/plugins/*.c))
FIXTURE_SO  := $(FIXTURES:%=$(BUILD)/fixtures/%.so)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
CORE_OBJ    := $(CORE_SRC:$(CORE_DIR)/%.c=$(BUILD)/core/%.o)

MODULE_SO   := $(BUILD)/ngx_http_maestro_module.so

.PHONY: fuzz all deps module plugins fixtures ui unit run test bench clean
# core objects are shared by every unit test: keep them
.SECONDARY:

all: deps module plugins fixtures ui

deps: $(BUILD)/.deps
$(BUILD)/.deps: scripts/deps.sh
	@mkdir -p $(BUILD)
	scripts/deps.sh
	@touch $@

# --- the nginx module -------------------------------------------------------

# configure again when a source file is added or removed (config lists them)
SRCLIST     := $(BUILD)/.srclist
$(shell mkdir -p $(BUILD); echo $(CORE_SRC) $(GLUE_SRC) $(CORE_HDR) \
    > $(SRCLIST).new; cmp -s $(SRCLIST).new $(SRCLIST) \
    || mv $(SRCLIST).new $(SRCLIST))

$(BUILD)/nginx/objs/Makefile: config $(SRCLIST) $(BUILD)/.deps
	@mkdir -p $(BUILD)/nginx
	rsync -a --delete --exclude objs $(NGX_SRC)/ $(BUILD)/nginx/
	cd $(BUILD)/nginx && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="-g -O2 -fPIC -Wno-error=deprecated-declarations" \
	        --with-ld-opt="-fPIC" \
	        --add-dynamic-module=$(CURDIR) > $(ABS_BUILD)/configure.log 2>&1 \
	    || { tail -20 $(ABS_BUILD)/configure.log; exit 1; }

module: $(MODULE_SO)
$(MODULE_SO): $(BUILD)/nginx/objs/Makefile $(CORE_SRC) $(CORE_HDR) $(GLUE_SRC)
	$(MAKE) -s -C $(BUILD)/nginx -f objs/Makefile modules
	@# a new inode: an nginx running the old .so must not see it change
	cp --remove-destination $(BUILD)/nginx/objs/ngx_http_maestro_module.so $@

# --- plugins and fixture plugins -------------------------------------------

plugins: $(PLUGIN_SO)
$(BUILD)/plugins/%.so: plugins/%/*.c plugins/include/maestro_plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -fvisibility=hidden -Iplugins/include \
	    -o $@ $(filter %.c,$^) -ljansson

fixtures: $(FIXTURE_SO)
$(BUILD)/fixtures/%.so: tests/fixtures/plugins/%.c plugins/include/maestro_plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -fvisibility=hidden -Iplugins/include \
	    -o $@ $< -ljansson

# --- the web UI (html/ -> html/dist, served by nginx) -----------------------

UI_SRC      := $(shell find html/src html/public html/sw html/index.html \
                 html/vite.config.ts html/tsconfig.json html/package.json \
                 -type f 2>/dev/null)

ui: html/dist/index.html

html/node_modules/.installed: html/package.json html/package-lock.json \
        $(BUILD)/.deps
	cd html && npm ci --no-audit --no-fund
	@touch $@

html/dist/index.html: html/node_modules/.installed $(UI_SRC)
	cd html && npm run build

# --- unit tests (core under ASan/LSan) --------------------------------------

$(BUILD)/core/%.o: $(CORE_DIR)/%.c $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) $(CORE_INC) -Iplugins/include -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJ) tests/unit/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -Wno-error $(CORE_INC) -Iplugins/include \
	    -o $@ $< $(CORE_OBJ) $(LIBS) -lcmocka -rdynamic

unit: $(UNIT_BIN)

# --- the two commands -------------------------------------------------------

run: all
	CONF=$(CONF) scripts/run.sh

test: all unit
	MST_BUILD=$(BUILD) scripts/test.sh

bench: all
	bench/run.sh

# libFuzzer on the parsers of outside bytes (clang; not part of test): what
# providers send back (the HTTP/1.1 response parser, the OpenAI wire), JWTs,
# request bodies (REST and /v1) and WebSocket frames and messages;
# FUZZ_SECONDS each (FUZZ_RUNS=N: that many executions instead)
FUZZ_SECONDS ?= 60
FUZZ_CC     := clang -g -O1 -std=gnu11 -D_GNU_SOURCE -Werror=implicit \
               -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined $(CORE_INC)

FUZZ_RUNS   ?= -1
FUZZ_OPTS   = -max_total_time=$(FUZZ_SECONDS) -runs=$(FUZZ_RUNS) -timeout=10
REQ_SRC     := $(addprefix $(CORE_DIR)/,text/mst_request.c text/mst_guard.c \
                 text/mst_guard_request.c text/mst_regex.c text/mst_json.c \
                 access/mst_caller.c mst_common.c)
REQ_LIBS    := -ljansson -lpcre2-8 -lutf8proc

fuzz:
	@command -v clang >/dev/null || { echo "fuzz: clang is required" \
	    "(apt-get install clang)" >&2; exit 1; }
	@mkdir -p $(BUILD)/fuzz/corpus $(BUILD)/fuzz/corpus_oai \
	    $(BUILD)/fuzz/corpus_jwt $(BUILD)/fuzz/corpus_request \
	    $(BUILD)/fuzz/corpus_ws
	$(FUZZ_CC) -o $(BUILD)/fuzz/fuzz_http1 tests/fuzz/fuzz_http1.c \
	    $(CORE_DIR)/llm/mst_http1.c
	$(FUZZ_CC) -o $(BUILD)/fuzz/fuzz_oai tests/fuzz/fuzz_oai.c \
	    $(CORE_DIR)/llm/mst_oai.c $(CORE_DIR)/text/mst_json.c \
	    $(CORE_DIR)/mst_common.c -ljansson
	$(FUZZ_CC) -o $(BUILD)/fuzz/fuzz_jwt tests/fuzz/fuzz_jwt.c \
	    $(CORE_DIR)/access/mst_jwt.c $(CORE_DIR)/mst_common.c \
	    -ljansson -lcrypto
	$(FUZZ_CC) -o $(BUILD)/fuzz/fuzz_request tests/fuzz/fuzz_request.c \
	    $(REQ_SRC) $(REQ_LIBS)
	$(FUZZ_CC) -o $(BUILD)/fuzz/fuzz_ws tests/fuzz/fuzz_ws.c \
	    $(CORE_DIR)/text/mst_ws_msg.c $(CORE_DIR)/text/mst_inflate.c \
	    $(REQ_SRC) $(REQ_LIBS) -lwslay -lz
	cp tests/fuzz/corpus/* $(BUILD)/fuzz/corpus/
	cp tests/fuzz/corpus_oai/* $(BUILD)/fuzz/corpus_oai/
	cp tests/fuzz/corpus_jwt/* $(BUILD)/fuzz/corpus_jwt/
	cp tests/fuzz/corpus_request/* $(BUILD)/fuzz/corpus_request/
	cp tests/fuzz/corpus_ws/* $(BUILD)/fuzz/corpus_ws/
	$(BUILD)/fuzz/fuzz_http1 -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    $(BUILD)/fuzz/corpus
	$(BUILD)/fuzz/fuzz_oai -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    $(BUILD)/fuzz/corpus_oai
	$(BUILD)/fuzz/fuzz_jwt -max_total_time=$(FUZZ_SECONDS) -max_len=2048 \
	    $(BUILD)/fuzz/corpus_jwt
	$(BUILD)/fuzz/fuzz_request $(FUZZ_OPTS) -max_len=8192 \
	    $(BUILD)/fuzz/corpus_request
	$(BUILD)/fuzz/fuzz_ws $(FUZZ_OPTS) -max_len=8192 \
	    $(BUILD)/fuzz/corpus_ws

clean:
	rm -rf $(BUILD) html/dist
