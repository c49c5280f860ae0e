package collect

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps_NoViewer checks that the receiver does not pull in the viewer
// or Echo: Serve is handed the viewer's server by its caller.
func TestDeps_NoViewer(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/lonelytrace/lonelytrace/viewer" || strings.HasPrefix(dep, "github.com/lonelytrace/lonelytrace/viewer/") || strings.HasPrefix(dep, "github.com/labstack/echo") {
			t.Errorf("go list -deps lists %s; want neither the viewer nor Echo", dep)
		}
	}
}
