package otelsetup_test

import (
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/internal/gotool"
)

// TestDeps_NoEcho checks that otelsetup, which most users import, does not
// pull in Echo: the Echo adapter of span return lives in its own package
// (exporter/spanreturn/spanreturnecho) that only Echo users import.
func TestDeps_NoEcho(t *testing.T) {
	for _, pkg := range []string{".", "../exporter/spanreturn"} {
		for _, dep := range gotool.Fields(t, "list", "-deps", pkg) {
			if strings.HasPrefix(dep, "github.com/labstack/echo") {
				t.Errorf("go list -deps %s lists %s; want no Echo", pkg, dep)
			}
		}
	}
}
