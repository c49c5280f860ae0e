package schema

import (
	"fmt"
	"unicode/utf8"
)

// GlobPattern is a compiled fnmatch-style pattern, the form of the glob
// subscriptions (the glob column) and of the glob filter of the viewer,
// lonelytrace export and lonelytrace copy (docs/design.md, "Filters").
// The rule is Python's fnmatch.fnmatchcase: '*' matches any run of
// characters, '/' included; '?' one character; "[seq]" one character in
// seq and "[!seq]" one not in it, where "a-z" is a range, a reversed range
// such as "z-a" holds nothing and a ']' first is literal; a '[' without
// its ']' is literal. Matching is on runes and case-sensitive. The zero
// GlobPattern matches only "".
type GlobPattern struct {
	toks []globToken
}

type globKind uint8

const (
	globLiteral globKind = iota
	globAny              // ?
	globStar             // *
	globClass            // [...]
)

type globToken struct {
	kind   globKind
	r      rune
	negate bool
	ranges [][2]rune // inclusive
}

// CompileGlob compiles pattern. Every string is a pattern: there is no
// error.
func CompileGlob(pattern string) GlobPattern {
	p := []rune(pattern)
	var g GlobPattern
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			if n := len(g.toks); n > 0 && g.toks[n-1].kind == globStar {
				continue // "**" is "*"; keeps matching linear
			}
			g.toks = append(g.toks, globToken{kind: globStar})
		case '?':
			g.toks = append(g.toks, globToken{kind: globAny})
		case '[':
			tok, end, ok := parseGlobClass(p, i+1)
			if !ok {
				g.toks = append(g.toks, globToken{kind: globLiteral, r: '['})
				continue
			}
			g.toks = append(g.toks, tok)
			i = end
		default:
			g.toks = append(g.toks, globToken{kind: globLiteral, r: c})
		}
	}
	return g
}

// CheckGlob reports whether pattern is one a person meant: a '[' that
// opens a set never closed is an error, saying where, though CompileGlob
// (like fnmatch) would read it as a literal '['. Query parameters are
// checked with it, so that a typo is refused instead of matching nothing;
// a literal '[' is written "[[]".
func CheckGlob(pattern string) error {
	p := []rune(pattern)
	for i := 0; i < len(p); i++ {
		if p[i] != '[' {
			continue
		}
		_, end, ok := parseGlobClass(p, i+1)
		if !ok {
			return fmt.Errorf("the '[' at character %d opens a set that no ']' closes (a literal '[' is written [[])", i+1)
		}
		i = end
	}
	return nil
}

// parseGlobClass parses the set that starts at p[i], just after '['. It
// returns the index of the closing ']', or ok false when there is none.
func parseGlobClass(p []rune, i int) (tok globToken, end int, ok bool) {
	tok.kind = globClass
	j := i
	if j < len(p) && p[j] == '!' {
		tok.negate = true
		j++
	}
	start := j
	if j < len(p) && p[j] == ']' {
		j++ // a ']' first is part of the set
	}
	for j < len(p) && p[j] != ']' {
		j++
	}
	if j >= len(p) {
		return tok, 0, false
	}
	set := p[start:j]
	for k := 0; k < len(set); k++ {
		lo := set[k]
		if k+2 < len(set) && set[k+1] == '-' {
			if hi := set[k+2]; lo <= hi {
				tok.ranges = append(tok.ranges, [2]rune{lo, hi})
			}
			k += 2
			continue
		}
		tok.ranges = append(tok.ranges, [2]rune{lo, lo})
	}
	return tok, j, true
}

func (t globToken) matches(r rune) bool {
	switch t.kind {
	case globLiteral:
		return r == t.r
	case globAny:
		return true
	case globClass:
		in := false
		for _, rg := range t.ranges {
			if rg[0] <= r && r <= rg[1] {
				in = true
				break
			}
		}
		return in != t.negate
	}
	return false
}

// Match reports whether name matches g. It backtracks only to the last
// star, so it is O(len(pattern)·len(name)) at worst: no pattern can blow
// it up. An invalid UTF-8 byte of name is one rune, U+FFFD.
func (g GlobPattern) Match(name string) bool {
	pi, ni := 0, 0 // token index, byte offset in name
	star, starNi := -1, 0
	for ni < len(name) {
		if pi < len(g.toks) && g.toks[pi].kind == globStar {
			star, starNi = pi, ni
			pi++
			continue
		}
		r, size := utf8.DecodeRuneInString(name[ni:])
		if pi < len(g.toks) && g.toks[pi].matches(r) {
			pi++
			ni += size
			continue
		}
		if star >= 0 {
			// The star takes one more rune and the rest tries again.
			_, size := utf8.DecodeRuneInString(name[starNi:])
			starNi += size
			pi, ni = star+1, starNi
			continue
		}
		return false
	}
	for pi < len(g.toks) && g.toks[pi].kind == globStar {
		pi++
	}
	return pi == len(g.toks)
}

// SpanGlobMatcher returns the glob filter's test of a span, for pattern:
// a span passes when its own glob pattern (a glob subscription's) is
// pattern, or its topic matches pattern. It remembers the topics it has
// judged (a window holds few distinct topics and many spans), so it is
// for one goroutine.
func SpanGlobMatcher(pattern string) func(topic, glob string) bool {
	g := CompileGlob(pattern)
	judged := make(map[string]bool)
	return func(topic, glob string) bool {
		if glob == pattern {
			return true
		}
		m, ok := judged[topic]
		if !ok {
			m = g.Match(topic)
			if len(judged) < maxJudgedTopics {
				judged[topic] = m
			}
		}
		return m
	}
}

// maxJudgedTopics bounds what a SpanGlobMatcher remembers.
const maxJudgedTopics = 100_000
