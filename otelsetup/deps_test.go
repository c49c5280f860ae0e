package otelsetup_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps_NoEcho checks that otelsetup, which most users import, does not
// pull in Echo: the Echo adapter of span return lives in its own package
// (exporter/spanreturn/spanreturnecho) that only Echo users import.
func TestDeps_NoEcho(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	for _, pkg := range []string{".", "../exporter/spanreturn"} {
		out, err := exec.Command(gobin, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/labstack/echo") {
				t.Errorf("go list -deps %s lists %s; want no Echo", pkg, dep)
			}
		}
	}
}
