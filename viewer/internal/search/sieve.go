package search

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
)

// The sieve of a search's row terms (name, attr). The walk (walk.go)
// reads the candidates' rows by id in the list's order, about 3.5 µs a
// row at a million spans: slowest first, the candidates lie all over the
// file, so nearly every row is a page that SQLite's small cache does not
// hold. That is cheap while most rows pass, but a name or attr that
// almost no operation has reads the row of every candidate. So once the
// rows read show that few pass (Rule), the walk asks SQLite for
// just the ids of the remaining candidates whose rows pass the terms, a
// chunk of row ids at a time, each in one short read
// transaction, on as many goroutines as there are CPUs (opstore.File.Sieve); and
// goes on walking those candidates only. A search whose walk has sieved
// so and still lacks traces ranks more candidates (nextRank); when
// sieving them would cost about as much as sieving the whole window, it
// sieves the window's operations instead, before it ranks, and ranks
// only those that pass (sieveWindow). Either way the sieve only takes
// out candidates whose rows would not pass: the order, the ties, the
// paging and the item that describes each trace are those of the walk
// without it. Memory holds the ids that pass, never rows.
//
// The name is judged exactly (name = ?). An attr term is judged loosely,
// as substrings of the stored attributes (sieveNeedles): a row whose
// value has the string form searched for is never taken out, and a row
// that passes the sieve but not the term only costs its read, as the walk
// judges the terms again on the rows it reads.

// Rule says when a walk sieves: once it has read the rows of at
// least sample candidates, and the rows it would still read at the rate
// at which they gave traces so far (all of them, when none did) are
// more than 1/share of the candidates left. A row read by id costs about
// as much as sieving 7 candidates, so at share 8 the sieve is taken only
// where it pays. A walk sieves once; the next walk of the search (after
// the candidates ran out, over more of them) sieves at once.
type Rule struct {
	Sample, Share int
}

// The rule of the viewer (viewer.Open).
const (
	DefaultSieveSample = 128
	DefaultSieveShare  = 8
)

// sieves reports whether a walk that has read the rows of read candidates
// and found traces among them, and still wants wanted traces of left
// candidates, sieves them.
func (r Rule) sieves(read, found, wanted, left int) bool {
	if read < r.Sample {
		return false
	}
	return found == 0 || int64(wanted)*int64(read)/int64(found)*int64(r.Share) > int64(left)
}

// sieveWindowShare: the window is sieved (sieveWindow) when that costs
// up to 4 times as much as sieving the k candidates of the round: that
// round is then the search's last, where k candidates of terms found
// rare, though ranked for twice the traces wanted at the rate so far,
// often give too few again, and the next round sieves the window anyway.
const sieveWindowShare = 4

// newSieve returns the sieve of name ("" for any) and of the attr terms
// attrs, whose keys have the ids keyIDs in the file; nil when there is
// no such term.
func newSieve(name string, attrs []Attr, keyIDs []int64) *opstore.Sieve {
	needles := make([][]string, len(attrs))
	for i, t := range attrs {
		needles[i] = sieveNeedles(keyIDs[i], t.Value)
	}
	return opstore.NewSieve(name, needles)
}

// sieveNeedles returns substrings of which the stored attributes of a
// span (schema.AppendAttributes, member names the key ids) hold at least
// one when the span's attribute of key id keyID has the string form want
// (attrString). The member is `"id":` and the value as the file encodes
// it:
//
//   - a string is AppendJSONString of itself, so that of want; but for
//     U+FFFD, which the file holds escaped where the string it was given
//     held invalid UTF-8: want with U+FFFD gives the member and '"';
//   - an int is want itself, a bool too; a float is want or want with
//     ".0", or {"float":"NaN"} (or "+Inf", "-Inf"); the form of any of
//     them reads as a float (strconv.ParseFloat), and one that does not
//     is only a string's;
//   - an array's form starts with '[', and so does its value, but the
//     form's floats lack the value's ".0": the needle is the member and
//     '['; an empty array's form is "[]" and its value
//     {"empty":"INT64SLICE"} (or another type): the member and {"empty":.
func sieveNeedles(keyID int64, want string) []string {
	member := `"` + strconv.FormatInt(keyID, 10) + `":`
	str := member + `"`
	if !strings.ContainsRune(want, utf8.RuneError) {
		str = member + string(schema.AppendJSONString(nil, want))
	}
	switch {
	case want == "[]":
		return []string{str, member + `{"empty":`}
	case strings.HasPrefix(want, "["):
		return []string{str, member + "["}
	case want == "true" || want == "false":
		return []string{str, member + want}
	}
	f, err := strconv.ParseFloat(want, 64)
	switch {
	case err != nil:
		return []string{str}
	case math.IsNaN(f) || math.IsInf(f, 0):
		return []string{str, member + `{"float":"` + want + `"}`}
	}
	return []string{str, member + want}
}

// sieve returns the candidates of cands whose rows may pass the search's
// row terms, in the order of cands.
func (sf *searchFile) sieve(ctx context.Context, cands []candidate) ([]candidate, error) {
	ids := make([]int64, len(cands))
	for i, c := range cands {
		ids[i] = c.id
	}
	keep, err := sf.f.Sieve(ctx, sf.sv, ids)
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, c := range cands {
		if _, ok := slices.BinarySearch(keep, c.id); ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// sieveWindow returns the ids of the operation spans of f's window in
// flt whose rows pass the sieve, in id order; ok is false, and nothing
// read, when that costs more than sieveWindowShare times as much as
// sieving k candidates. A search that found its row terms rare sieves so
// before it ranks k candidates, and then ranks only those that pass, all
// of them.
func (sf *searchFile) sieveWindow(ctx context.Context, flt *opstore.Filter, k int) (ids []int64, ok bool, err error) {
	return sf.f.SieveWindow(ctx, sf.sv, flt, sieveWindowShare*int64(k))
}
