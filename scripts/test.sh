#!/usr/bin/env bash
# test.sh: the whole test suite. Installs what the tests need (idempotently),
# checks that every platform builds without cgo, then runs go test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
export CGO_ENABLED=0
for os in linux windows darwin; do
  GOOS=$os go build ./... || { echo "test.sh: build for GOOS=$os failed" >&2; exit 1; }
done
go vet ./...
export PATH="$PWD/tools/node_modules/.bin:$PATH"
go test -count=1 -timeout 40m "$@" ./...
# Every benchmark once (not when go test was given arguments): benchmarks check
# what they measure, so they must keep working. No timing is asserted.
if [ $# -eq 0 ]; then
  go test -count=1 -run '^$' -bench . -benchtime 1x ./... | grep -v -e '^ok ' -e 'no test files' -e '^PASS$'
fi
