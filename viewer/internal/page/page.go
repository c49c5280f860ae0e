package page

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"strconv"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

//go:embed page.html
var pageFS embed.FS

// pageTemplate is parsed once, at start-up: a broken template fails every
// test and the first run, not a user's request. Each function takes the
// type its values have in the model.
var pageTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"count":        fmtCount[int64],
	"countInt":     fmtCount[int],
	"ms":           fmtMs,
	"exactMs":      exactMs,
	"bytes":        fmtBytes,
	"sumBytes":     func(n uint64) string { return fmtBytes(float64(n)) },
	"fileBytes":    func(n int64) string { return fmtBytes(float64(n)) },
	"exactBytes":   exactBytes,
	"percent":      fmtPercent,
	"opLabel":      opLabel,
	"pcts":         func() []string { return model.PercentileNames[:] },
	"time":         func(t time.Time) string { return t.Format("2006-01-02 15:04:05.000 MST") },
	"exactTime":    func(t time.Time) string { return t.Format(time.RFC3339Nano) },
	"age":          fmtAge,
	"share":        share,
	"msArg":        msArg,
	"subsAttr":     func(n int64) string { return attrArg(string(schema.SubscribersKey), strconv.FormatInt(n, 10)) },
	"statefulAttr": func() string { return attrArg(string(schema.StatefulKey), "true") },
	"axisY":        func(c *trendChart) float64 { return c.Height - seriesAxisH },
	"deref":        func(n *int64) int64 { return *n },
}).ParseFS(pageFS, "page.html"))

// opLabel is how the page names an operation.
func opLabel(op string) string {
	switch op {
	case schema.OpNotify:
		return "notify"
	case schema.OpReceive:
		return "receive"
	case schema.OpSubscribeExact:
		return "subscribe exact"
	case schema.OpSubscribeGlob:
		return "subscribe glob"
	case schema.OpUnsubscribeExact:
		return "unsubscribe exact"
	case schema.OpUnsubscribeGlob:
		return "unsubscribe glob"
	case schema.OpSetSubscriptions:
		return "set subscriptions"
	case schema.OpMissed:
		return "missed"
	}
	return op
}

// pageModel is everything the template shows, computed before rendering.
type pageModel struct {
	Error   string
	Form    Form
	Summary *model.Summary
	Ops     []opModel
	Avg     []avgModel
	Sizes   []sizeModel
	// Series, Breakdowns and Map are the investigation sections.
	Series     []seriesModel
	Step       string
	Breakdowns []breakdownModel
	Map        *mapModel
	Traces     *model.TraceList
	// NextTraces links to the next page of the trace list.
	NextTraces, PrevTraces template.URL
	// Self holds the window and filters; Search the search parameters
	// of the trace list.
	Self url.Values
	// Approximate is set when some percentiles come from sketches.
	Approximate bool
	// Jaeger is the line about the fetch from Jaeger: its error, or the
	// part of the window it holds whole when that is not all of it.
	Jaeger string
	Search url.Values
	// Token is the request's token parameter, carried along in every
	// link and in the form (see viewer.RequireToken).
	Token string
}

// Form is the form at the top of the page, as the user filled it in.
type Form struct {
	Since, Until, TZ, Broadcaster, Topic, Glob string
	SincePresets, UntilPresets                 []string
	// The search of the trace list.
	Op, Service, Status, MinMs, MaxMs, Name, Sort string
	Attrs                                         []string
	// Ops are the operations the form offers; Render sets them.
	Ops []string
}

type opModel struct {
	Op    string
	Label string
	*model.Operation
	Hist *chart
}

type avgModel struct {
	Op    string
	Label string
	*model.AverageTrace
	Chart *chart
}

type sizeModel struct {
	Op    string
	Label string
	*model.Operation
	Chart *chart
}

// chart is an inline SVG bar chart; coordinates are in its viewBox.
type chart struct {
	Width, Height float64
	Bars          []bar
}

type bar struct {
	X, Y, W, H     float64
	Label, Title   string
	LabelX, LabelY float64
	// Class is the bar's CSS class where the template does not fix it:
	// "b", or "e" for failures.
	Class string
	// Door is where the bar leads, where it is a door.
	Door template.URL
	// FailW is the width of the bar's failed share, drawn red over its
	// start (the average trace's phases).
	FailW float64
}

// roundPx rounds a coordinate to a tenth of a pixel, as finely as a
// screen shows: the page's many bars cost a third of the bytes.
func roundPx(x float64) float64 { return math.Round(x*10) / 10 }

// rounded is b with its coordinates rounded by roundPx.
func (b bar) rounded() bar {
	b.X, b.Y, b.W, b.H = roundPx(b.X), roundPx(b.Y), roundPx(b.W), roundPx(b.H)
	b.LabelX, b.LabelY, b.FailW = roundPx(b.LabelX), roundPx(b.LabelY), roundPx(b.FailW)
	return b
}

// roundBars rounds the bars of c.
func (c *chart) roundBars() *chart {
	for i := range c.Bars {
		c.Bars[i] = c.Bars[i].rounded()
	}
	return c
}

type waterfallBar struct {
	model.SpanView
	Indent float64
	X, W   float64
	// Exceptions are the span's exception events, shown inline; Marks
	// place each event on the bar's scale.
	Exceptions []exceptionView
	Marks      []eventMark
}

// eventMark is an event's tick on the waterfall.
type eventMark struct {
	X         float64
	Title     string
	Exception bool
}

// Main is what the main page shows, every answer finished: the page lays
// them out and reads nothing.
type Main struct {
	// Error is a bad parameter's message; with it, only the form is shown.
	Error string
	Form  Form
	// Summary, Series, Breakdowns, Map and Traces are the answers of the
	// window and filters; Location is the zone of the series' times.
	Summary    *model.Summary
	Series     *model.Series
	Location   *time.Location
	Breakdowns []*model.Breakdown
	Map        *Map
	Traces     *model.TraceList
	// Offset and Limit place Traces in the whole list, for its links to
	// the next and previous pages.
	Offset, Limit int
	// Self holds the window, filters and token, Search the search of the
	// trace list, as parameters to carry along in links.
	Self, Search url.Values
	// Token is the request's token parameter (see viewer.RequireToken).
	Token string
	// Jaeger is the line about the fetch from Jaeger (viewer.OpenJaeger).
	Jaeger string
	// MaxMs is the largest duration bound a door may carry (min_ms,
	// max_ms); a histogram bin beyond it leads to no upper bound.
	MaxMs float64
}

// Render renders the main page of in.
func Render(in *Main) ([]byte, error) {
	m := &pageModel{Error: in.Error, Form: in.Form, Token: in.Token, Jaeger: in.Jaeger}
	m.Form.Ops = schema.Operations[:]
	if in.Summary != nil {
		m.fill(in)
	}
	var buf bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&buf, "page", m); err != nil {
		return nil, fmt.Errorf("viewer: render page: %w", err)
	}
	return buf.Bytes(), nil
}

// fill lays out the answers of in.
func (m *pageModel) fill(in *Main) {
	s := in.Summary
	m.Summary = s
	m.Self, m.Search = in.Self, in.Search
	m.Series = m.seriesModels(in.Series, s.Since, s.Until, in.Location)
	m.Step = fmtStep(time.Duration(in.Series.StepMs) * time.Millisecond)
	for _, b := range in.Breakdowns {
		m.Breakdowns = append(m.Breakdowns, m.breakdownModel(b))
	}
	m.Map = m.mapModel(in.Map)
	for _, op := range schema.Operations {
		o := s.Operations[op]
		hist := histogramChart(o.Histogram)
		if hist != nil {
			for i, b := range o.Histogram {
				lo, hi := msArg(b.FromMs), msArg(b.BelowMs)
				if i == 0 && b.FromMs == 0 {
					lo = "" // the first bin holds negative durations too
				}
				if b.BelowMs > in.MaxMs {
					hi = ""
				}
				hist.Bars[i].Door = m.Door("op", op, "min_ms", lo, "max_ms", hi)
			}
		}
		m.Ops = append(m.Ops, opModel{Op: op, Label: opLabel(op), Operation: o, Hist: hist})
		m.Approximate = m.Approximate || o.Approximate
	}
	for _, op := range []string{schema.OpNotify, schema.OpReceive} {
		a := s.AverageTrace[op]
		m.Avg = append(m.Avg, avgModel{Op: op, Label: opLabel(op), AverageTrace: a, Chart: phaseChart(a.Phases)})
		o := s.Operations[op]
		m.Sizes = append(m.Sizes, sizeModel{Op: op, Label: opLabel(op), Operation: o, Chart: sizeChart(o.BySize)})
	}
	m.Traces = in.Traces
	if m.Traces != nil && m.Traces.More {
		m.NextTraces = m.link("offset", strconv.Itoa(in.Offset+in.Limit))
	}
	if in.Offset > 0 {
		m.PrevTraces = m.link("offset", strconv.Itoa(max(0, in.Offset-in.Limit)))
	}
}

// link returns a relative link to the page with the query's parameters
// (token and search included) and one more.
func (m *pageModel) link(key, value string) template.URL {
	vals := Merged(m.Self, m.Search)
	vals.Set(key, value)
	// The query string is built by url.Values.Encode, so it is safe as a
	// URL; template.URL keeps html/template from escaping it twice.
	return template.URL("?" + vals.Encode())
}

// Door links a number on the page to the operations behind it: the page's
// trace list with the current window, filters and token, and the search
// parameters kv (pairs of name and value, replacing those of the same
// name; an empty value removes one; a name given again, such as attr,
// adds a value). Every number the page shows is a door, so that a user
// who sees a bad one can get to its traces. The door starts a new search:
// the search in force is not carried, the window and filters are.
func (m *pageModel) Door(kv ...string) template.URL {
	return template.URL("?" + doorValues(m.Self, kv).Encode() + "#traces")
}

// doorValues is base with the pairs of kv applied as Door applies them.
func doorValues(base url.Values, kv []string) url.Values {
	vals := Merged(base)
	vals.Del("offset")
	vals.Del("trace")
	given := make(map[string]bool)
	for i := 0; i+1 < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		if !given[k] {
			vals.Del(k)
			given[k] = true
		}
		if v != "" {
			vals.Add(k, v)
		}
	}
	return vals
}

// TraceLink links a trace's page from the list, with the window, filters,
// search and token carried along so that its way back is the same list.
func (m *pageModel) TraceLink(id string) template.URL {
	return template.URL("trace/" + url.PathEscape(id) + "?" + Merged(m.Self, m.Search).Encode())
}

// Merged is a copy of the union of sets of parameters.
func Merged(sets ...url.Values) url.Values {
	out := url.Values{}
	for _, set := range sets {
		for k, vs := range set {
			out[k] = append(out[k], vs...)
		}
	}
	return out
}

const chartWidth = 600

// histogramChart draws the duration histogram: one bar per power-of-two
// bin, its height the bin's share of the largest.
func histogramChart(bins []model.HistogramBin) *chart {
	if len(bins) == 0 {
		return nil
	}
	const h = 80
	c := &chart{Width: chartWidth, Height: h + 16}
	var most int64
	for _, b := range bins {
		most = max(most, b.Count)
	}
	w := float64(chartWidth) / float64(len(bins))
	for i, b := range bins {
		bh := float64(h) * float64(b.Count) / float64(most)
		if b.Count > 0 {
			bh = max(bh, 1)
		}
		c.Bars = append(c.Bars, bar{
			X: float64(i)*w + 1, Y: h - bh, W: max(w-2, 1), H: bh,
			Title:  fmt.Sprintf("%s operations from %s to below %s", fmtCount(b.Count), fmtMs(b.FromMs), fmtMs(b.BelowMs)),
			Label:  "<" + fmtMs(b.BelowMs),
			LabelX: float64(i)*w + w/2, LabelY: h + 12,
		})
	}
	return c.roundBars()
}

// sizeChart draws the size buckets.
func sizeChart(buckets []model.SizeBucket) *chart {
	if len(buckets) == 0 {
		return nil
	}
	bins := make([]model.HistogramBin, len(buckets))
	c := histogramChart(bins) // layout only
	var most int64
	for _, b := range buckets {
		most = max(most, b.Count)
	}
	for i, b := range buckets {
		bh := 0.0
		if most > 0 {
			bh = 80 * float64(b.Count) / float64(most)
		}
		if b.Count > 0 {
			bh = max(bh, 1)
		}
		c.Bars[i].Y, c.Bars[i].H = 80-bh, bh
		c.Bars[i].Title = fmt.Sprintf("%s messages below %s bytes", fmtCount(b.Count), b.Below)
		c.Bars[i].Label = "<2^" + strconv.Itoa(i)
		if i == 0 {
			c.Bars[i].Label = "0"
		}
	}
	return c.roundBars()
}

// phaseChart draws the average trace: one bar per phase from its typical
// start to its typical end.
func phaseChart(phases []model.Phase) *chart {
	if len(phases) == 0 {
		return nil
	}
	const rowH, labelW = 18.0, 200.0
	lo, hi := 0.0, 0.0
	for _, p := range phases {
		lo, hi = math.Min(lo, p.StartMs), math.Max(hi, p.EndMs)
	}
	span := hi - lo
	if span <= 0 {
		span = 1
	}
	plotW := chartWidth - labelW
	c := &chart{Width: chartWidth, Height: rowH * float64(len(phases))}
	for i, p := range phases {
		x := labelW + (p.StartMs-lo)/span*plotW
		w := max((p.EndMs-p.StartMs)/span*plotW, 1)
		b := bar{
			X: x, Y: float64(i)*rowH + 3, W: w, H: rowH - 6,
			Label: p.Name, LabelX: 2, LabelY: float64(i)*rowH + 13,
			Title: fmt.Sprintf("%s: %s–%s, in %s of operations", p.Name, fmtMs(p.StartMs), fmtMs(p.EndMs), fmtPercent(p.InPercent)),
			Class: "b",
		}
		if p.ErrorPercent > 0 {
			// The red part is the failed share, so that 2.7 % and 19 %
			// look different; at least a pixel, so that a failure shows.
			b.FailW = max(w*p.ErrorPercent/100, 1)
			b.Title += fmt.Sprintf(", failed in %s", fmtPercent(p.ErrorPercent))
		}
		c.Bars = append(c.Bars, b)
	}
	return c.roundBars()
}

// waterfall places each span of d on a 0–1000 scale of the trace's time.
func waterfall(d *model.TraceDetail) []waterfallBar {
	total := d.DurationMs
	if total <= 0 {
		total = 1
	}
	out := make([]waterfallBar, 0, len(d.Spans))
	for _, s := range d.Spans {
		x := s.OffsetMs / total * 1000
		w := max(s.DurationMs/total*1000, 2)
		b := waterfallBar{SpanView: s, Indent: float64(min(s.Depth, 20)) * 12, X: x, W: min(w, 1000-x), Exceptions: exceptions(s)}
		for _, e := range s.Events {
			ex := min(max((s.OffsetMs+e.OffsetMs)/total*1000, 0), 998)
			b.Marks = append(b.Marks, eventMark{X: ex, Title: e.Name + " at +" + fmtMs(s.OffsetMs+e.OffsetMs), Exception: e.Name == "exception"})
		}
		out = append(out, b)
	}
	return out
}

// share is part's share of whole in percent, 0 when whole is.
func share(part, whole int64) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// msArg writes milliseconds exactly as a search parameter (min_ms,
// max_ms) takes them.
func msArg(ms float64) string { return strconv.FormatFloat(ms, 'f', -1, 64) }

// attrArg is the value of the attr search parameter: the attribute key
// and the value in its string form.
func attrArg(key, value string) string { return key + "=" + value }

// fmtAge formats a retention age in days when it is whole days, else as
// Go prints durations.
func fmtAge(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		if d == day {
			return "1 day"
		}
		return strconv.FormatInt(int64(d/day), 10) + " days"
	}
	return d.String()
}
