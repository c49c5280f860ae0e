package schema_test

import (
	"testing"
	"unicode/utf8"

	"github.com/lonelytrace/lonelytrace/internal/fnmatch"
	"github.com/lonelytrace/lonelytrace/schema"
)

func TestGlob_Match(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true}, {"*", "a/b", true}, {"orders*", "orders/eu", true}, {"orders*", "order", false},
		{"?", "é", true}, {"?", "", false}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"[abc]", "b", true}, {"[abc]", "d", false}, {"[!abc]", "d", true}, {"[!abc]", "a", false},
		{"[a-c]x", "bx", true}, {"[a-c]x", "dx", false}, {"[]]", "]", true}, {"[!]]", "a", true}, {"[!]]", "]", false},
		{"[a-]", "-", true}, {"[z-a]", "m", false}, {"[!z-a]", "m", true},
		{"[", "[", true}, {"a[b", "a[b", true}, {"[!", "[!", true}, {"x*y", "x*y", true}, {"x*y", "xzzy", true},
		{"a[b]", "a[b]", false}, {"a[[]b]", "a[b]", true}, {"\\*", "\\x", true},
		{"*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	}
	for _, c := range cases {
		if got := schema.CompileGlob(c.pattern).Match(c.name); got != c.want {
			t.Errorf("match(%q, %q) = %v; want %v", c.pattern, c.name, got, c.want)
		}
		if got := fnmatch.Regexp(c.pattern).MatchString(c.name); got != c.want {
			t.Errorf("oracle(%q, %q) = %v; want %v (the oracle is wrong)", c.pattern, c.name, got, c.want)
		}
	}
}

// FuzzGlob compares the matcher with the fnmatch.translate oracle.
func FuzzGlob(f *testing.F) {
	f.Add("orders*", "orders/eu")
	f.Add("[!a-c]?x*", "dzx")
	f.Add("[]-]", "-")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(name) || len(pattern) > 64 || len(name) > 256 {
			t.Skip()
		}
		got := schema.CompileGlob(pattern).Match(name)
		if want := fnmatch.Regexp(pattern).MatchString(name); got != want {
			t.Errorf("match(%q, %q) = %v; want %v", pattern, name, got, want)
		}
	})
}
