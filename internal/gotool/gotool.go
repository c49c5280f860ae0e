// Package gotool runs the go command for tests that check what packages
// import (the walls docs/architecture.md draws), skipping them where go
// is not on PATH.
package gotool

import (
	"os/exec"
	"strings"
	"testing"
)

// Output runs go with args (in the test's package directory) and returns
// its output; it skips tb when go is not on PATH and fails it when the
// command fails.
func Output(tb testing.TB, args ...string) string {
	tb.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		tb.Skip("go is not on PATH")
	}
	out, err := exec.Command(gobin, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Fields is Output split at white space: the packages go list lists.
func Fields(tb testing.TB, args ...string) []string {
	tb.Helper()
	return strings.Fields(Output(tb, args...))
}
