// Package viewer turns one or many lonelytrace trace files into pub/sub
// answers: how many notifications, to how many broadcasters, how long they
// took and what happened inside them, as one self-contained HTML page
// (inline CSS and SVG, no script, no request to anywhere else, so saving
// it is a snapshot) and as JSON.
//
// Open the files read-only and mount the viewer on an Echo group:
//
//	v, err := viewer.Open("app.db", "other.db")
//	if err != nil { ... }
//	defer v.Close()
//	v.Register(e.Group("/stats")) // page at /stats/, JSON at /stats/api/...
//
// A plain net/http program mounts it through an Echo instance, which is an
// http.Handler:
//
//	e := echo.New()
//	v.Register(e.Group("/stats"))
//	http.Handle("/stats/", e)
//
// The page and the API take the same parameters: since, until, tz,
// broadcaster, topic and glob, as docs/design.md#windows-and-percentiles
// defines them (see ParseQuery). The API answers /api/summary (Summary),
// /api/series with step (Series), /api/breakdown with by and op
// (Breakdown), /api/map (PubSubMap), /api/traces and
// /api/traces/:trace_id.
// Bad parameters are answered with 400 and a message. Responses carry a
// content security policy that allows nothing external; the viewer has no
// access control of its own, so serve it on a loopback address.
//
// A Go program asks the same questions with typed queries: a Query (the
// window and filters, built directly or parsed from text by ParseQuery),
// a SeriesQuery, a BreakdownQuery, a PageQuery:
//
//	q, err := viewer.ParseQuery(viewer.QueryText{Since: "penultimate-midnight", Until: "midnight"}, time.Now(), time.Local)
//	if err != nil { ... }
//	s, err := v.Summary(ctx, q)
//	b, err := v.Breakdown(ctx, viewer.BreakdownQuery{Query: q, By: "topic"})
package viewer
