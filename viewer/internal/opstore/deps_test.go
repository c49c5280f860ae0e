package opstore

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps_Rooms checks the walls between the viewer's rooms that the
// compiler does not keep by itself: the op store and the search import
// no Echo (only the viewer's root speaks HTTP), and the search reaches
// no database, its SQL being the op store's.
func TestDeps_Rooms(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	for _, pkg := range []string{".", "../search"} {
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
	out, err := exec.Command(gobin, "list", "-f", `{{join .Imports " "}}`, "../search").CombinedOutput()
	if err != nil {
		t.Fatalf("go list ../search: %v\n%s", err, out)
	}
	for _, imp := range strings.Fields(string(out)) {
		if imp == "database/sql" || strings.HasSuffix(imp, "/internal/sqlitec") || strings.HasPrefix(imp, "modernc.org/sqlite") {
			t.Errorf("the search imports %s; want its reads through the op store", imp)
		}
	}
}
