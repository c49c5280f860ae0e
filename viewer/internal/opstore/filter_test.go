package opstore

import (
	"net/url"
	"testing"
)

// TestFilter_FormsAgree checks that the Go form on the cache's numbered
// strings, and the Go form after SQL (rowTest on the rows that where's
// exact matches select), keep exactly the spans that keep keeps.
func TestFilter_FormsAgree(t *testing.T) {
	strs := []string{"", "orders", "orders/eu", "orders*", "b1", "b2", "chat/[x]"}
	for _, params := range []url.Values{
		{"topic": {"orders"}}, {"glob": {"orders*"}}, {"glob": {"chat/?x?"}}, {"broadcaster": {"b2"}},
		{"broadcaster": {"b1"}, "glob": {"*eu"}}, {"topic": {"absent"}}, {"broadcaster": {"b1"}, "topic": {"orders/eu"}},
	} {
		flt := NewFilter(0, 1, params.Get("broadcaster"), params.Get("topic"), params.Get("glob"))
		test, rowTest := flt.spanTest(strs), flt.rowTest()
		kept := 0
		for b := range strs {
			for tp := range strs {
				for g := range strs {
					o := &Span{Broadcaster: uint32(b), Topic: uint32(tp), Glob: uint32(g)}
					want := flt.keep(strs[b], strs[tp], strs[g])
					if got := test(o); got != want {
						t.Errorf("%v: span (%q, %q, %q) kept = %v; want %v", params, strs[b], strs[tp], strs[g], got, want)
					}
					if flt.broadcasterOK(strs[b]) && flt.topicOK(strs[tp]) { // where selects it
						if got := rowTest == nil || rowTest(strs[tp], strs[g]); got != want {
							t.Errorf("%v: row (%q, %q, %q) kept = %v; want %v", params, strs[b], strs[tp], strs[g], got, want)
						}
					}
					if want {
						kept++
					}
				}
			}
		}
		if kept == 0 && params.Get("topic") != "absent" {
			t.Errorf("%v keeps no span", params)
		}
	}
	if NewFilter(0, 1, "", "", "").spanTest(strs) != nil {
		t.Error("spanTest without filters is not nil")
	}
}
