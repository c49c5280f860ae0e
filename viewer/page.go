package viewer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/page"
)

// renderPage renders the page for params. On a bad parameter it renders
// the form with the message, and returns the page and the *ParseError.
func (v *Viewer) renderPage(ctx context.Context, params url.Values) ([]byte, error) {
	in := &page.Main{Form: page.Form{SincePresets: sincePresets, UntilPresets: untilPresets}, Token: params.Get(TokenParam),
		Limit: DefaultTraceLimit, MaxMs: maxSearchMs}
	q, perr := ParseQuery(params, v.now(), v.loc)
	in.Form.Since, in.Form.Until, in.Form.TZ = q.Raw.Since, q.Raw.Until, q.Raw.TZ
	in.Form.Broadcaster, in.Form.Topic, in.Form.Glob = params.Get("broadcaster"), params.Get("topic"), params.Get("glob")
	in.Form.Op, in.Form.Service, in.Form.Status = params.Get("op"), params.Get("service"), params.Get("status")
	in.Form.MinMs, in.Form.MaxMs, in.Form.Name, in.Form.Sort = params.Get("min_ms"), params.Get("max_ms"), params.Get("name"), params.Get("sort")
	in.Form.Attrs = params["attr"]
	if in.Form.Since == "" {
		in.Form.Since = defaultSince
	}
	if in.Form.Until == "" {
		in.Form.Until = defaultUntil
	}
	if perr == nil {
		perr = v.answerPage(ctx, in, q, params)
		lo, _ := q.bounds()
		in.Jaeger = v.jaeger.note(time.Unix(0, lo))
	}
	var pe *ParseError
	if perr != nil {
		if !errors.As(perr, &pe) {
			return nil, perr
		}
		in.Error, in.Summary = pe.Error(), nil
	}
	b, err := page.Render(in)
	if err != nil {
		return nil, err
	}
	if pe != nil {
		return b, pe
	}
	return b, nil
}

// answerPage computes every answer the page shows into in: the summary,
// the series, the breakdowns and the map from one visit of the window's
// operations, and the trace list with its totals.
func (v *Viewer) answerPage(ctx context.Context, in *page.Main, q Query, params url.Values) error {
	offset := 0
	if s := params.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxTraceOffset-DefaultTraceLimit {
			return &ParseError{Param: "offset", Value: clip(s), Want: fmt.Sprintf("an integer from 0 to %d", maxTraceOffset-DefaultTraceLimit)}
		}
		offset = n
	}
	srch, err := parseSearch(params)
	if err != nil {
		return err
	}
	step, err := parseStep(params)
	if err != nil {
		return err
	}
	flt := newFilter(q)
	// One read of the window's operations feeds every section.
	w, err := v.plan(ctx, flt, true)
	if err != nil {
		return err
	}
	acc := newWindowAcc(w.ex)
	series, err := seriesFor(ctx, w, q, step)
	if err != nil {
		return err
	}
	pubsub := newMapAcc(w.ex)
	visitors := []opVisitor{acc.visitor, series.visitor, pubsub.visitor}
	var breakdowns []*breakdownAcc
	for _, op := range []int{schema.NotifyIndex, schema.ReceiveIndex} {
		for _, by := range breakdownBys {
			if by == "subscribers" && op != schema.NotifyIndex {
				continue // only a notify reaches subscribers
			}
			b := newBreakdownAcc(by, op, w.ex)
			breakdowns = append(breakdowns, b)
			visitors = append(visitors, b.visitor)
		}
	}
	totals := newSearchTotals(&srch, len(v.files))
	visitors = append(visitors, totals.visitor)
	if err := w.visitByFile(ctx, totals.begin, listWindow, visitors...); err != nil {
		return err
	}
	s, err := v.summaryOf(ctx, q, w, acc)
	if err != nil {
		return err
	}
	traces, err := v.listCountedTraces(ctx, flt, &srch, q.Location, offset, DefaultTraceLimit, totals)
	if err != nil {
		return err
	}
	in.Summary, in.Traces, in.Offset = s, traces, offset
	in.Self = q.values()
	if in.Token != "" {
		in.Self.Set(TokenParam, in.Token)
	}
	in.Search = srch.values()
	in.Series, in.Location = series.series(s.Since, s.Until, q.Location), q.Location
	for _, b := range breakdowns {
		in.Breakdowns = append(in.Breakdowns, b.breakdown())
	}
	in.Map = pageMap(pubsub.pubsubMap())
	return nil
}
