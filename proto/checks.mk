# The contracts' checks, part of `make test` (the Makefile includes this file and runs $(CHECKS)).
# buf is installed on first use from npm into ~/.cache/culture-platform/buf/ by
# proto/scripts/ensure-buf.sh; code generation needs the venv (grpcio-tools).
.PHONY: proto-lint proto-format proto-breaking proto-generate proto-generate-check proto-checks

proto-lint:
	@echo "==> buf lint (STANDARD + COMMENTS)"
	@buf="$$(proto/scripts/ensure-buf.sh)" && "$$buf" lint proto

proto-format:
	@echo "==> buf format check (fix with: \$$(proto/scripts/ensure-buf.sh) format -w proto)"
	@buf="$$(proto/scripts/ensure-buf.sh)" && "$$buf" format proto --diff --exit-code

proto-breaking:
	@proto/scripts/breaking.sh

# Regenerate services/culture/ after changing a .proto file (then commit both).
proto-generate: venv
	@proto/scripts/generate.sh

proto-generate-check: venv
	@proto/scripts/generate.sh --check

proto-checks: proto-lint proto-format proto-breaking proto-generate-check

CHECKS += proto-lint proto-format proto-breaking proto-generate-check
