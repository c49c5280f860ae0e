package viewer_test

import (
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/internal/gotool"
)

// TestRooms_Imports checks the walls between the viewer's packages
// (docs/architecture.md#dependencies): the JSON types and the quantiles
// use the standard library only, and the page renders a finished model:
// it imports the JSON types, schema (the operations' names) and the
// standard library, so no SQL, no scan connection, no Echo and no engine.
func TestRooms_Imports(t *testing.T) {
	const mod = "github.com/lonelytrace/lonelytrace/"
	list := func(t *testing.T, format, pkg string) []string {
		t.Helper()
		return gotool.Fields(t, "list", "-f", format, pkg)
	}
	// std reports whether path is in the standard library: its first
	// element has no dot.
	std := func(path string) bool { return !strings.Contains(strings.Split(path, "/")[0], ".") }
	for _, pkg := range []string{mod + "viewer/model", mod + "viewer/internal/quantiles"} {
		t.Run(strings.TrimPrefix(pkg, mod), func(t *testing.T) {
			for _, dep := range list(t, `{{join .Deps " "}}`, pkg) {
				if !std(dep) {
					t.Errorf("%s depends on %s; want the standard library only", pkg, dep)
				}
			}
		})
	}
	t.Run("viewer/internal/page", func(t *testing.T) {
		pkg := mod + "viewer/internal/page"
		allowed := map[string]bool{mod + "viewer/model": true, mod + "schema": true}
		for _, imp := range list(t, `{{join .Imports " "}}`, pkg) {
			if imp == "database/sql" || !std(imp) && !allowed[imp] {
				t.Errorf("%s imports %s; want only the standard library (no database/sql), viewer/model and schema", pkg, imp)
			}
		}
		for _, dep := range list(t, `{{join .Deps " "}}`, pkg) {
			if strings.HasPrefix(dep, "github.com/labstack/echo") || dep == mod+"internal/sqlitec" || dep == mod+"viewer" ||
				strings.HasPrefix(dep, mod+"viewer/internal/") && dep != pkg {
				t.Errorf("%s depends on %s; want no Echo, no scan connection and no engine", pkg, dep)
			}
		}
	})
	t.Run("viewer API", func(t *testing.T) {
		// The Go API takes typed queries: url.Values stays in the handlers.
		for _, line := range strings.Split(gotool.Output(t, "doc", "-all", mod+"viewer"), "\n") {
			if strings.Contains(line, "url.Values") {
				t.Errorf("go doc -all viewer shows %q; want no url.Values", strings.TrimSpace(line))
			}
		}
	})
}
