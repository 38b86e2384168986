#!/usr/bin/env bash
# The project's one test command: formatting, vet, the race detector and
# every test tier in every module, with the real-Redis tier required.
set -euo pipefail
cd "$(dirname "$0")"
export SRL_REQUIRE_REDIS="${SRL_REQUIRE_REDIS:-1}"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi

# The library must not pull test-only or demo-only code into users' builds,
# and only the metrics package may pull the Prometheus client.
library=$(go list ./... | grep -v -e /backendtest -e /cmd/ -e /internal/cli)
if go list -deps $library | grep -E 'miniredis|testcontainers'; then
	echo "the library's dependency graph contains the lines above" >&2
	exit 1
fi
if go list -deps $(echo "$library" | grep -v /metrics) | grep prometheus; then
	echo "only the metrics package may import the Prometheus client" >&2
	exit 1
fi
# The SQLite driver lives in the sqlitelimit module only: nothing the root
# module builds may reach it, neither the Redis limiter nor the client.
if go list -deps ./redislimit ./httpclient ./storage ./cmd/... | grep -iE 'modernc|sqlite'; then
	echo "the SQL driver entered the root module's dependency graph (above)" >&2
	exit 1
fi
if grep -iE 'modernc|sqlite' go.mod; then
	echo "go.mod requires the SQLite driver (above); it belongs to sqlitelimit/go.mod" >&2
	exit 1
fi

# The go directive users need stays at 1.25 (a dependency bump must not raise it).
for module in . integration sqlitelimit; do
	if ! grep -qE '^go 1\.25(\.[0-9]+)?$' "$module/go.mod"; then
		echo "$module/go.mod: the go directive must stay 1.25" >&2
		exit 1
	fi
done

staticcheck=$(command -v staticcheck || echo "$(go env GOPATH)/bin/staticcheck")
for module in . integration sqlitelimit; do
	echo "== $module"
	(cd "$module" && go vet ./... && go test -race -count=1 -timeout 15m ./...)
	if [ -x "$staticcheck" ]; then
		(cd "$module" && "$staticcheck" ./...)
	else
		echo "staticcheck not installed; skipped (go install honnef.co/go/tools/cmd/staticcheck@latest)"
	fi
done
