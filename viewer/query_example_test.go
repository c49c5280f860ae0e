package viewer_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/lonelytrace/lonelytrace/viewer"
)

// Parse a window as a user writes it: yesterday, in UTC.
func ExampleParseQuery() {
	now := time.Date(2026, 3, 10, 15, 4, 5, 0, time.UTC)
	q, err := viewer.ParseQuery(viewer.QueryText{Since: "penultimate-midnight", Until: "midnight", Topic: "orders"}, now, time.UTC)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(q.Since, "to", q.Until, "topic", q.Topic)
	// Output:
	// 2026-03-09 00:00:00 +0000 UTC to 2026-03-10 00:00:00 +0000 UTC topic orders
}

// Ask the viewer a typed question from Go: the summary of every
// operation in the file, and the notifies by topic (the example's one notify has none: key "").
func ExampleViewer_Summary() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "trace.db")
	makeExampleFile(path)

	v, err := viewer.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	q := viewer.Query{SinceBeginning: true, Until: time.Now(), Location: time.UTC}
	s, err := v.Summary(context.Background(), q)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("notifies:", s.Operations["notify"].Count)
	b, err := v.Breakdown(context.Background(), viewer.BreakdownQuery{Query: q, By: "topic"})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range b.Rows {
		fmt.Printf("topic %q: %d\n", r.Key, r.Count)
	}
	// Output:
	// notifies: 1
	// topic "": 1
}
