// Package fnmatch is a second statement of the glob rule of the viewer's
// glob filter (docs/design.md, "Filters"): a translation of the pattern
// into a regular expression, as Python's fnmatch module does it. Tests use
// it as an oracle independent of schema.CompileGlob, which walks tokens
// instead; nothing else should.
package fnmatch

import (
	"fmt"
	"regexp"
	"strings"
)

// Regexp translates an fnmatch pattern into a regular expression the way
// Python's fnmatch.translate does.
func Regexp(pat string) *regexp.Regexp {
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
