package collect

import (
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/internal/gotool"
)

// TestDeps_NoViewer checks that the receiver does not pull in the viewer
// or Echo: Serve is handed the viewer's server by its caller.
func TestDeps_NoViewer(t *testing.T) {
	for _, dep := range gotool.Fields(t, "list", "-deps", ".") {
		if dep == "github.com/lonelytrace/lonelytrace/viewer" || strings.HasPrefix(dep, "github.com/lonelytrace/lonelytrace/viewer/") || strings.HasPrefix(dep, "github.com/labstack/echo") {
			t.Errorf("go list -deps lists %s; want neither the viewer nor Echo", dep)
		}
	}
}
