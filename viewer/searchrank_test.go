package viewer_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTraces_SearchSmallPages checks small pages against oracleSearch:
// the search ranks a few candidates per operation first and ranks more
// when the terms it judges on the rows (name, attr) or the traces'
// several operations leave too few, so small pages deep in the list
// exercise every round.
func TestTraces_SearchSmallPages(t *testing.T) {
	// Recording fills in the specs' trace ids: each set of files has its
	// own specs, the same operations at the same times.
	for _, files := range searchFileSets(t, genSearchSpecs(5, 600), genSearchSpecs(5, 600), 250) {
		t.Run(files.name, func(t *testing.T) {
			searchSmallPages(t, files.specs, server(t, mustOpen(t, testNow, files.paths...)))
		})
	}
}

// searchFileSet is a set of trace files and the specs recorded in them.
type searchFileSet struct {
	name  string
	specs []*searchSpec
	paths []string
}

// searchFileSets records specs in one file, and split (the same
// operations, generated again: recording fills in their trace ids) in two
// files cut at cut, and returns three sets: the one file, the two, and the
// two with a copy of the first (each trace once).
func searchFileSets(t *testing.T, specs, split []*searchSpec, cut int) []searchFileSet {
	t.Helper()
	one := recordSearchSpecs(t, t.TempDir(), specs)
	a := recordSearchSpecs(t, t.TempDir(), split[:cut])
	b := recordSearchSpecs(t, t.TempDir(), split[cut:])
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	copyA := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(copyA, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return []searchFileSet{{"OneFile", specs, []string{one}}, {"TwoFiles", split, []string{a, b}}, {"TwoFilesAndACopy", split, []string{b, copyA, a}}}
}

func searchSmallPages(t *testing.T, specs []*searchSpec, base string) {
	since := testNow.Add(-2 * time.Hour).Format(time.RFC3339Nano)
	cases := []url.Values{
		{},
		{"op": {"receive"}},
		{"name": {"deliver"}},
		{"attr": {"tenant=acme"}},
		{"attr": {"codes=[1,2]"}, "status": {"ok"}},
		{"service": {"edge"}, "name": {"sub"}, "min_ms": {"5"}},
	}
	for _, p := range cases {
		for _, order := range []string{"newest", "slowest"} {
			for _, page := range []struct{ offset, limit int }{{0, 1}, {0, 3}, {5, 2}, {30, 4}, {100, 1}} {
				q := url.Values{}
				for k, v := range p {
					q[k] = v
				}
				q.Set("since", since)
				q.Set("sort", order)
				q.Set("offset", fmt.Sprint(page.offset))
				q.Set("limit", fmt.Sprint(page.limit))
				t.Run(q.Encode(), func(t *testing.T) {
					all := oracleSearch(specs, q)
					var want []string
					if page.offset < len(all) {
						for _, s := range all[page.offset:min(page.offset+page.limit, len(all))] {
							want = append(want, s.traceID+" "+s.op)
						}
					}
					l := traceList(t, base, q)
					var got []string
					for _, it := range l.Traces {
						got = append(got, it.TraceID+" "+it.Op)
					}
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("traces = %v; want %v (of %d)", got, want, len(all))
					}
					if more := len(all) > page.offset+page.limit; l.More != more {
						t.Errorf("more = %v; want %v", l.More, more)
					}
				})
			}
		}
	}
}
