package viewer

// globMatch reports whether name matches the fnmatch-style pattern, as
// Python's fnmatch.fnmatchcase does it: '*' matches any run of characters
// ('/' included), '?' one character, "[seq]" one character in seq and
// "[!seq]" one not in it; inside brackets "a-z" is a range and a ']' first
// is literal; a '[' without its ']' is literal. Matching is on runes and
// case-sensitive.
func globMatch(pattern, name string) bool {
	return compileGlob(pattern).match([]rune(name))
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

type glob []globToken

func compileGlob(pattern string) glob {
	p := []rune(pattern)
	var g glob
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			if len(g) > 0 && g[len(g)-1].kind == globStar {
				continue // "**" is "*"; keeps matching linear
			}
			g = append(g, globToken{kind: globStar})
		case '?':
			g = append(g, globToken{kind: globAny})
		case '[':
			tok, end, ok := parseClass(p, i+1)
			if !ok {
				g = append(g, globToken{kind: globLiteral, r: '['})
				continue
			}
			g = append(g, tok)
			i = end
		default:
			g = append(g, globToken{kind: globLiteral, r: c})
		}
	}
	return g
}

// parseClass parses the set that starts at p[i], just after '['. It
// returns the index of the closing ']', or ok false when there is none.
func parseClass(p []rune, i int) (tok globToken, end int, ok bool) {
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
			hi := set[k+2]
			if lo <= hi {
				tok.ranges = append(tok.ranges, [2]rune{lo, hi})
			}
			// A reversed range such as "z-a" matches nothing, as in Python.
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

// match runs the usual backtracking-to-the-last-star algorithm: it is
// O(len(pattern)·len(name)) at worst, so no pattern can blow it up.
func (g glob) match(name []rune) bool {
	pi, ni := 0, 0
	star, starNi := -1, 0
	for ni < len(name) {
		if pi < len(g) && g[pi].kind == globStar {
			star, starNi = pi, ni
			pi++
			continue
		}
		if pi < len(g) && g[pi].matches(name[ni]) {
			pi++
			ni++
			continue
		}
		if star >= 0 {
			starNi++
			pi, ni = star+1, starNi
			continue
		}
		return false
	}
	for pi < len(g) && g[pi].kind == globStar {
		pi++
	}
	return pi == len(g)
}
