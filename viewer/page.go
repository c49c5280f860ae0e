package viewer

import (
	"context"
	"errors"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/internal/page"
	tsearch "github.com/lonelytrace/lonelytrace/viewer/internal/search"
)

// renderPage renders the page of r. With perr, the error of parsing r,
// it renders the form with the message, and returns the page and perr
// when it is a *ParseError.
func (v *Viewer) renderPage(ctx context.Context, r pageRequest, perr error) ([]byte, error) {
	in := &page.Main{Token: r.token, Limit: DefaultTraceLimit, MaxMs: maxSearchMs, Form: page.Form{
		SincePresets: sincePresets, UntilPresets: untilPresets,
		Since: r.text.Since, Until: r.text.Until, TZ: r.text.TZ, Broadcaster: r.text.Broadcaster, Topic: r.text.Topic, Glob: r.text.Glob,
		Op: r.form.Get("op"), Service: r.form.Get("service"), Status: r.form.Get("status"),
		MinMs: r.form.Get("min_ms"), MaxMs: r.form.Get("max_ms"), Name: r.form.Get("name"), Sort: r.form.Get("sort"), Attrs: r.form["attr"],
	}}
	if in.Form.Since == "" {
		in.Form.Since = defaultSince
	}
	if in.Form.Until == "" {
		in.Form.Until = defaultUntil
	}
	if perr == nil {
		perr = v.answerPage(ctx, in, r)
	}
	if r.queried {
		// The window was understood: the line on Jaeger goes with it.
		lo, _ := r.q.bounds()
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

// answerPage computes every answer the page of r shows into in: the
// summary, the series, the breakdowns and the map from one visit of the
// window's operations, and the trace list with its totals.
func (v *Viewer) answerPage(ctx context.Context, in *page.Main, r pageRequest) error {
	q, srch, offset, step := r.q, r.srch, r.offset, r.step
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
	visitors := []opstore.Visitor{acc.visitor, series.visitor, pubsub.visitor}
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
	totals := tsearch.NewTotals(&srch.Terms, len(v.files))
	if err := w.visitWithFile(ctx, totals.Visitor, visitors...); err != nil {
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
