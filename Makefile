# `sam build --build-in-source` runs `make build-<LogicalId>` here once per
# function (infra/template.yaml, BuildMethod: makefile). The first one builds
# all three binaries in one cargo invocation; the other two find them built.
#
#   ARCH=arm64 (default) or x86_64: the same as the stack's Architecture.
#
# cargo-lambda cross-links with zig (pip install cargo-lambda; docs/deploy.md).

ARCH ?= arm64
TARGET_arm64 := aarch64-unknown-linux-gnu
TARGET_x86_64 := x86_64-unknown-linux-gnu
TARGET := $(TARGET_$(ARCH))
ifeq ($(TARGET),)
$(error ARCH must be arm64 or x86_64, not $(ARCH))
endif
BINS := fail2waf-ingest fail2waf-alarm fail2waf-expire

.PHONY: lambda build-IngestFunction build-AlarmFunction build-ExpireFunction

lambda:
	cargo lambda build --profile lambda --no-default-features --target $(TARGET) \
		$(addprefix --bin ,$(BINS))

build-IngestFunction: lambda
	cp target/lambda/fail2waf-ingest/bootstrap $(ARTIFACTS_DIR)/bootstrap

build-AlarmFunction: lambda
	cp target/lambda/fail2waf-alarm/bootstrap $(ARTIFACTS_DIR)/bootstrap

build-ExpireFunction: lambda
	cp target/lambda/fail2waf-expire/bootstrap $(ARTIFACTS_DIR)/bootstrap
