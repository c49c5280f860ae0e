package page

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Numbers for people: the page and the terminal show these, with the exact
// value beside them (in a title attribute on the page).

// fmtCount writes n with thousands separators: 1,204.
func fmtCount[T int | int64 | uint64](n T) string {
	digits, neg := strings.CutPrefix(fmt.Sprint(n), "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtMs writes a duration given in milliseconds with two or three
// significant digits and a unit that suits it: 0.42 ms, 3.2 ms, 120 ms,
// 1.4 s, 2.5 min, 3.1 h, 2.0 d.
func fmtMs(ms float64) string {
	if math.IsNaN(ms) || math.IsInf(ms, 0) {
		return "–"
	}
	neg := ""
	if ms < 0 {
		neg, ms = "-", -ms
	}
	switch {
	case ms == 0:
		return "0 ms"
	case ms < 1000:
		return neg + significant(ms) + " ms"
	case ms < 60_000:
		return neg + significant(ms/1000) + " s"
	case ms < 3_600_000:
		return neg + significant(ms/60_000) + " min"
	case ms < 86_400_000:
		return neg + significant(ms/3_600_000) + " h"
	}
	return neg + significant(ms/86_400_000) + " d"
}

// significant writes f (positive) with two significant digits below 10 and no
// decimals above.
func significant(f float64) string {
	switch {
	case f < 0.01:
		return strconv.FormatFloat(f, 'g', 2, 64)
	case f < 1:
		return strconv.FormatFloat(f, 'f', 2, 64)
	case f < 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return fmtCount(int64(math.Round(f)))
}

// exactMs writes milliseconds exactly, for title attributes.
func exactMs(ms float64) string {
	return strconv.FormatFloat(ms, 'f', -1, 64) + " ms"
}

// fmtBytes writes a size in binary units: 512 B, 1.4 KiB, 3.0 MiB.
func fmtBytes(n float64) string {
	if n < 1024 {
		return fmtCount(int64(n)) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if n < 10 {
		return strconv.FormatFloat(n, 'f', 1, 64) + " " + units[i]
	}
	return strconv.FormatFloat(n, 'f', 0, 64) + " " + units[i]
}

// exactBytes writes a size exactly, for title attributes.
func exactBytes(n float64) string {
	return strconv.FormatFloat(n, 'f', -1, 64) + " bytes"
}

// fmtPercent writes a share: 100%, 75%, 0.5%.
func fmtPercent(p float64) string {
	if p >= 10 || p == 0 {
		return fmt.Sprintf("%.0f%%", p)
	}
	return fmt.Sprintf("%.1f%%", p)
}
