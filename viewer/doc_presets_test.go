package viewer

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"testing"
)

// TestParseQuery_DocListsPresets checks that `go doc ./viewer ParseQuery`,
// which the README points to, lists every preset since and until take.
func TestParseQuery_DocListsPresets(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "window.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "ParseQuery" && fn.Doc != nil {
			doc = fn.Doc.Text()
		}
	}
	if doc == "" {
		t.Fatal("ParseQuery has no doc comment in window.go")
	}
	for name, presets := range map[string][]string{"since": sincePresets, "until": untilPresets} {
		for _, p := range presets {
			if !regexp.MustCompile(`(^|[\s,])` + regexp.QuoteMeta(p) + `([\s,]|$)`).MatchString(doc) {
				t.Errorf("ParseQuery's doc does not list the %s preset %q:\n%s", name, p, doc)
			}
		}
	}
}
