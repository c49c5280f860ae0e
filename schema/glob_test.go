package schema_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

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
		if got := fnmatchRegexp(c.pattern).MatchString(c.name); got != c.want {
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
		if want := fnmatchRegexp(pattern).MatchString(name); got != want {
			t.Errorf("match(%q, %q) = %v; want %v", pattern, name, got, want)
		}
	})
}

// fnmatchRegexp translates an fnmatch pattern the way Python's
// fnmatch.translate does, as an oracle independent of GlobPattern's
// matcher (a regular expression, not a token walk).
func fnmatchRegexp(pat string) *regexp.Regexp {
	p := []rune(pat)
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i + 1
			if j < len(p) && p[j] == '!' {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				j++
			}
			if j >= len(p) {
				b.WriteString(`\[`)
				continue
			}
			set := p[i+1 : j]
			i = j
			neg := false
			if len(set) > 0 && set[0] == '!' {
				neg, set = true, set[1:]
			}
			var items []string
			valid := 0
			for k := 0; k < len(set); k++ {
				if k+2 < len(set) && set[k+1] == '-' {
					if set[k] <= set[k+2] {
						items = append(items, fmt.Sprintf(`\x{%x}-\x{%x}`, set[k], set[k+2]))
						valid++
					}
					k += 2
					continue
				}
				items = append(items, fmt.Sprintf(`\x{%x}`, set[k]))
				valid++
			}
			switch {
			case valid == 0 && neg:
				b.WriteString(`.`)
			case valid == 0:
				b.WriteString(`[^\x00-\x{10FFFF}]`) // matches nothing
			case neg:
				b.WriteString(`[^` + strings.Join(items, "") + `]`)
			default:
				b.WriteString(`[` + strings.Join(items, "") + `]`)
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}
