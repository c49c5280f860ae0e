package jaegerquery_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/jaegerquery"
)

// Fetch the last hour of a Jaeger into a trace file, and say how much of
// it is whole. (Not run: it needs a Jaeger.)
func ExampleFetchFile() {
	until := time.Now()
	res, err := jaegerquery.FetchFile(context.Background(), "127.0.0.1:16685", "jaeger.db", until.Add(-time.Hour), until,
		jaegerquery.WithMaxTraces(10_000))
	if err != nil {
		fmt.Println(err) // one line: Jaeger's address, the call, and what went wrong
		return
	}
	fmt.Printf("%d traces, %d spans; whole from %s\n", res.Traces, res.Spans, res.CoveredSince.Format(time.RFC3339))
	if !res.Complete() {
		fmt.Println("partial:", res.Reason)
	}
}
