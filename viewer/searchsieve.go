package viewer

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lonelytrace/lonelytrace/schema"
)

// The sieve of a search's row terms (name, attr). The walk (searchrows.go)
// reads the candidates' rows by id in the list's order, about 3.5 µs a
// row at a million spans: slowest first, the candidates lie all over the
// file, so nearly every row is a page that SQLite's small cache does not
// hold. That is cheap while most rows pass, but a name or attr that
// almost no operation has reads the row of every candidate. So once the
// rows read show that few pass (sieveRule), the walk asks SQLite for
// just the ids of the remaining candidates whose rows pass the terms, a
// chunk of row ids (chunkShift) at a time, each in one short read
// transaction, on as many goroutines as there are CPUs (runTasks); and
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

// sieveRule says when a walk sieves: once it has read the rows of at
// least sample candidates, and the rows it would still read at the rate
// at which they gave traces so far (all of them, when none did) are
// more than 1/share of the candidates left. A row read by id costs about
// as much as sieving 7 candidates, so at share 8 the sieve is taken only
// where it pays. A walk sieves once; the next walk of the search (after
// the candidates ran out, over more of them) sieves at once.
type sieveRule struct {
	sample, share int
}

// The rule of a Viewer.
const (
	defaultSieveSample = 128
	defaultSieveShare  = 8
)

// sieves reports whether a walk that has read the rows of read candidates
// and found traces among them, and still wants wanted traces of left
// candidates, sieves them.
func (r sieveRule) sieves(read, found, wanted, left int) bool {
	if read < r.sample {
		return false
	}
	return found == 0 || int64(wanted)*int64(read)/int64(found)*int64(r.share) > int64(left)
}

// sieve is the queries of a search's row terms in one file.
type sieve struct {
	// byRange selects the ids of the operation spans of ids ?1 to ?2
	// that pass the terms; byList those of the ids in the JSON array
	// ?1. args are the terms' arguments, which follow.
	byRange, byList string
	args            []any
}

// A sieve query reads a chunk's candidates by range or by list, whichever
// costs less: the range reads every span between its first and last
// candidates in page order, about 90 ns a span; the list looks each
// candidate up, about 530 ns. So a chunk's candidates are read by list
// when they are fewer than a sixth of the spans they span (operations
// are a fifth of a pub/sub application's spans: all of a chunk's
// operations are read by range).
const (
	sieveScanCost   = 1
	sieveLookupCost = 6
)

// sieveWindowShare: the window is sieved (sieveWindow) when that costs
// up to 4 times as much as sieving the k candidates of the round: that
// round is then the search's last, where k candidates of terms found
// rare, though ranked for twice the traces wanted at the rate so far,
// often give too few again, and the next round sieves the window anyway.
const sieveWindowShare = 4

// newSieve returns the sieve of name ("" for any) and of the attr terms
// attrs, whose keys have the ids keyIDs in the file; nil when there is
// no such term.
func newSieve(name string, attrs []attrTerm, keyIDs []int64) *sieve {
	if name == "" && len(attrs) == 0 {
		return nil
	}
	var args []any
	if name != "" {
		args = append(args, name)
	}
	for i, t := range attrs {
		for _, n := range sieveNeedles(keyIDs[i], t.value) {
			args = append(args, n)
		}
	}
	// terms writes the terms, their parameters numbered from first.
	terms := func(first int) string {
		var b strings.Builder
		p := first
		if name != "" {
			fmt.Fprintf(&b, " AND name = ?%d", p)
			p++
		}
		for i, t := range attrs {
			b.WriteString(" AND (")
			for j := range sieveNeedles(keyIDs[i], t.value) {
				if j > 0 {
					b.WriteString(" OR ")
				}
				fmt.Fprintf(&b, "instr(attributes, ?%d) > 0", p)
				p++
			}
			b.WriteString(")")
		}
		return b.String()
	}
	return &sieve{
		byRange: "SELECT id FROM spans WHERE id BETWEEN ?1 AND ?2 AND op IS NOT NULL" + terms(3),
		byList:  "SELECT id FROM spans WHERE id IN (SELECT value FROM json_each(?1))" + terms(2),
		args:    args,
	}
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
// row terms, in the order of cands. Each chunk's candidates are one
// query, one short read transaction.
func (sf *searchFile) sieve(ctx context.Context, cands []candidate) ([]candidate, error) {
	ids := make([]int64, len(cands))
	for i, c := range cands {
		ids[i] = c.id
	}
	slices.Sort(ids)
	var parts []int // ids[parts[i]:parts[i+1]] is a chunk's
	for i, id := range ids {
		if i == 0 || id>>chunkShift != ids[i-1]>>chunkShift {
			parts = append(parts, i)
		}
	}
	parts = append(parts, len(ids))
	passed := make([][]int64, len(parts)-1)
	errs := make([]error, len(parts)-1)
	runTasks(len(passed), func(i int) {
		passed[i], errs[i] = sf.sieveChunk(ctx, ids[parts[i]:parts[i+1]])
	})
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("search traces of %s: %w", sf.f.path, err)
		}
	}
	keep := slices.Concat(passed...)
	slices.Sort(keep)
	var out []candidate
	for _, c := range cands {
		if _, ok := slices.BinarySearch(keep, c.id); ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// sieveChunk returns the ids of ids, a chunk's in order, whose rows pass
// the sieve.
func (sf *searchFile) sieveChunk(ctx context.Context, ids []int64) ([]int64, error) {
	first, last := ids[0], ids[len(ids)-1]
	if int64(len(ids))*sieveLookupCost >= (last-first+1)*sieveScanCost {
		return sf.sieveQuery(ctx, sf.sv.byRange, first, last)
	}
	return sf.sieveQuery(ctx, sf.sv.byList, jsonIDs(len(ids), func(i int) int64 { return ids[i] }))
}

// sieveWindow returns the ids of the operation spans of f's window in
// flt whose rows pass the sieve, in id order, read by range a chunk at a
// time; ok is false, and nothing read, when that costs more than
// sieveWindowShare times as much as sieving k candidates by list. A
// search that found its row terms rare sieves so before it ranks k
// candidates, and then ranks only those that pass, all of them.
func (sf *searchFile) sieveWindow(ctx context.Context, flt *filter, k int) (ids []int64, ok bool, err error) {
	var ranges [][2]int64
	var spans int64
	err = listWindow(ctx, sf.f, flt, func(_ int64, batches []schema.Batch) bool {
		r := [2]int64{batches[0].FirstSpan, batches[len(batches)-1].LastSpan}
		ranges, spans = append(ranges, r), spans+r[1]-r[0]+1
		return true
	})
	if err != nil || spans*sieveScanCost > sieveWindowShare*int64(k)*sieveLookupCost {
		return nil, false, err
	}
	passed := make([][]int64, len(ranges))
	errs := make([]error, len(ranges))
	runTasks(len(ranges), func(i int) {
		passed[i], errs[i] = sf.sieveQuery(ctx, sf.sv.byRange, ranges[i][0], ranges[i][1])
	})
	for _, err := range errs {
		if err != nil {
			return nil, false, fmt.Errorf("search traces of %s: %w", sf.f.path, err)
		}
	}
	ids = slices.Concat(passed...)
	slices.Sort(ids)
	return ids, true, nil
}

// sieveQuery runs query, one of sf.sv's, with the ids' arguments and the
// terms', and returns the ids it selects.
func (sf *searchFile) sieveQuery(ctx context.Context, query string, ids ...any) ([]int64, error) {
	rows, err := sf.f.db.QueryContext(ctx, query, append(ids, sf.sv.args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
