package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// This build links no SQLite driver: the command says which one does.
func TestSQLiteNeedsTheSQLiteBuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rate_limits.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "keys", "--store", "sqlite:///"+path)
	if code != 2 || !strings.Contains(errOut, `import _ "github.com/smartratelimit/smartratelimit/sqlitelimit"`) ||
		!strings.Contains(errOut, "go run github.com/smartratelimit/smartratelimit/sqlitelimit/cmd/smartratelimit") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
}

// --store is --redis by another name, and the usage says so.
func TestStoreIsAnAliasOfRedis(t *testing.T) {
	url, _ := seeded(t, "api.github.com")
	code, out, errOut := runCmd(t, "keys", "--store", url)
	if code != 0 || !strings.Contains(out, "api.github.com") {
		t.Fatalf("keys --store: exit %d\n%s\n%s", code, out, errOut)
	}
	_, usage, _ := runCmd(t, "help", "status")
	if !strings.Contains(usage, "-store URL") || !strings.Contains(usage, "the same as --redis") || !strings.Contains(usage, "sqlite:///") {
		t.Fatalf("the usage does not document --store:\n%s", usage)
	}
}
