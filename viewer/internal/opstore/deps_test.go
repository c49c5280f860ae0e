package opstore

import (
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/internal/gotool"
)

// TestDeps_Rooms checks the walls between the viewer's rooms that the
// compiler does not keep by itself: the op store and the search import
// no Echo (only the viewer's root speaks HTTP), and the search reaches
// no database, its SQL being the op store's.
func TestDeps_Rooms(t *testing.T) {
	for _, pkg := range []string{".", "../search"} {
		for _, dep := range gotool.Fields(t, "list", "-deps", pkg) {
			if strings.HasPrefix(dep, "github.com/labstack/echo") {
				t.Errorf("go list -deps %s lists %s; want no Echo", pkg, dep)
			}
		}
	}
	for _, imp := range gotool.Fields(t, "list", "-f", `{{join .Imports " "}}`, "../search") {
		if imp == "database/sql" || strings.HasSuffix(imp, "/internal/sqlitec") || strings.HasPrefix(imp, "modernc.org/sqlite") {
			t.Errorf("the search imports %s; want its reads through the op store", imp)
		}
	}
}
