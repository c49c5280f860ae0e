package page

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// The page's drawings of the investigation sections (trends, breakdowns,
// the pub/sub map), built from the API's answers: inline SVG, no script,
// each bucket, row, node and edge a door to its traces.

// seriesModel is the trends of one operation.
type seriesModel struct {
	Op, Label string
	// Open is set for the operations shown unfolded: notify and receive,
	// when they have operations.
	Open  bool
	Total int64
	Chart *trendChart
}

// trendChart is the trends of one operation in one drawing: three bands
// (rate, failures, durations) over one time axis, and one column per
// bucket that has operations, a door over the full height with the
// bucket's exact numbers. The bars of each kind are one path, drawn over
// the columns and letting the pointer through to them; empty buckets
// draw nothing. Both keep the page small.
type trendChart struct {
	Width, Height float64
	Bands         []trendBand
	Columns       []bucketColumn
	Paths         []barPath
	Ticks         []timeTick
}

// barPath is the bars of one class as one SVG path.
type barPath struct {
	Class string
	D     string
}

// barPaths gathers bars into one path per class, in the order the
// classes first appear.
func barPaths(bars []bar) []barPath {
	var order []string
	ds := map[string]*strings.Builder{}
	for _, b := range bars {
		if b.H <= 0 {
			continue
		}
		d := ds[b.Class]
		if d == nil {
			d = &strings.Builder{}
			ds[b.Class] = d
			order = append(order, b.Class)
		}
		b = b.rounded()
		px := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
		fmt.Fprintf(d, "M%s %sh%sv%sh-%sz", px(b.X), px(b.Y), px(b.W), px(b.H), px(b.W))
	}
	out := make([]barPath, 0, len(order))
	for _, c := range order {
		out = append(out, barPath{Class: c, D: ds[c].String()})
	}
	return out
}

// trendBand is one measure's band: its name and top value, written above
// it at Y.
type trendBand struct {
	Y     float64
	Label string
}

// timeTick labels the time axis at X; Anchor is its SVG text-anchor.
type timeTick struct {
	X            float64
	Label, Title string
	Anchor       string
}

// bucketColumn is one bucket of a chart: a door over its full height
// with the bucket's exact numbers.
type bucketColumn struct {
	X, W  float64
	Door  template.URL
	Title string
}

// The layout of a trend chart: three bands of seriesBandH, each under a
// line of text, and the time axis below.
const (
	seriesBandH  = 44.0
	seriesLabelH = 14.0
	seriesAxisH  = 16.0
)

// seriesModels draws the series s of the window [since, until) for each
// operation, its time ticks in loc.
func (m *pageModel) seriesModels(s *model.Series, since, until time.Time, loc *time.Location) []seriesModel {
	var out []seriesModel
	step := time.Duration(s.StepMs) * time.Millisecond
	stepText := fmtStep(step)
	bandY := func(i int) float64 { return float64(i)*(seriesLabelH+seriesBandH) + seriesLabelH }
	height := seriesAxisH + bandY(3) - seriesLabelH
	w := float64(chartWidth) / float64(max(len(s.Buckets), 1))
	for _, op := range schema.Operations {
		sm := seriesModel{Op: op, Label: opLabel(op)}
		var most, mostErr int64
		var slowest float64
		approximate := false
		for _, b := range s.Buckets {
			p := b.Ops[op]
			sm.Total += p.Count
			most, mostErr = max(most, p.Count), max(mostErr, p.Errors)
			if p.P99Ms != nil {
				slowest = max(slowest, *p.P99Ms)
			}
			approximate = approximate || p.Approximate
		}
		sm.Open = sm.Total > 0 && (op == schema.OpNotify || op == schema.OpReceive)
		if sm.Total == 0 {
			out = append(out, sm)
			continue
		}
		latency := "p50 (dark) and p99 (light) duration, top " + fmtMs(slowest)
		if approximate {
			latency = "p50 (dark) and p99 (light) duration, ≈ estimated within 1 %, top " + fmtMs(slowest)
		}
		c := &trendChart{Width: chartWidth, Height: height, Bands: []trendBand{
			{Y: bandY(0) - 3, Label: "operations per " + stepText + ", top " + fmtCount(most)},
			{Y: bandY(1) - 3, Label: "failed per " + stepText + ", top " + fmtCount(mostErr)},
			{Y: bandY(2) - 3, Label: latency},
		}}
		// place is where a bar of value v lies in band, top the band's
		// largest value.
		place := func(band int, v, top float64) (y, h float64) {
			if top > 0 && v > 0 {
				h = max(seriesBandH*v/top, 1)
			}
			return bandY(band) + seriesBandH - h, h
		}
		// A column's title says its times as briefly as the chart
		// allows: no date within a day, no milliseconds for whole seconds.
		fromLayout, toLayout := "2006-01-02 15:04:05.000", "15:04:05.000 MST"
		if step%time.Second == 0 && len(s.Buckets) > 0 {
			fromLayout, toLayout = "2006-01-02 15:04:05", "15:04:05 MST"
			first, last := s.Buckets[0].Start.In(loc), s.Buckets[len(s.Buckets)-1].Start.In(loc).Add(step)
			if first.YearDay() == last.Add(-1).YearDay() && last.Sub(first) < 24*time.Hour {
				fromLayout, toLayout = "15:04:05", "15:04:05"
			}
		}
		var drawn []bar
		for i, b := range s.Buckets {
			p := b.Ops[op]
			if p.Count == 0 {
				continue
			}
			lo, hi := b.Start, b.Start.Add(step)
			if lo.Before(since) {
				lo = since
			}
			if hi.After(until) {
				hi = until
			}
			col := bucketColumn{X: float64(i) * w, W: w,
				Door: m.Door("op", op, "since", lo.Format(time.RFC3339Nano), "until", hi.Format(time.RFC3339Nano)),
				Title: fmt.Sprintf("%s to %s: %s %s, %s failed, %s bytes", lo.Format(fromLayout), hi.Format(toLayout),
					fmtCount(p.Count), opLabel(op), fmtCount(p.Errors), fmtCount(p.Bytes))}
			if p.P50Ms != nil {
				about := ""
				if p.Approximate {
					about = "≈"
				}
				col.Title += fmt.Sprintf(", p50 %s%s, p99 %s%s", about, exactMs(*p.P50Ms), about, exactMs(*p.P99Ms))
			}
			bw := max(w-1, 0.5)
			y, h := place(0, float64(p.Count), float64(most))
			drawn = append(drawn, bar{X: col.X, Y: y, W: bw, H: h, Class: "b"})
			if p.Errors > 0 {
				y, h = place(1, float64(p.Errors), float64(mostErr))
				drawn = append(drawn, bar{X: col.X, Y: y, W: bw, H: h, Class: "e"})
			}
			if p.P50Ms != nil {
				y99, h99 := place(2, *p.P99Ms, slowest)
				y50, h50 := place(2, *p.P50Ms, slowest)
				drawn = append(drawn, bar{X: col.X, Y: y99, W: bw, H: h99, Class: "p99"}, bar{X: col.X, Y: y50, W: bw, H: h50, Class: "b p50"})
			}
			col.X, col.W = roundPx(col.X), roundPx(col.W)
			c.Columns = append(c.Columns, col)
		}
		// The p50 bars go over the p99 ones, so p99 is drawn first.
		c.Paths = barPaths(drawn)
		c.Ticks = timeTicks(s, step, loc)
		sm.Chart = c
		out = append(out, sm)
	}
	return out
}

// timeTicks labels the start, the middle and the end of the buckets of s
// in loc, with as much of the date as the range needs; the exact instants
// are in the titles.
func timeTicks(s *model.Series, step time.Duration, loc *time.Location) []timeTick {
	if len(s.Buckets) == 0 {
		return nil
	}
	start := s.Buckets[0].Start.In(loc)
	n := int64(len(s.Buckets))
	mid := addSteps(start, n/2, step)
	end := addSteps(start, n, step)
	layout := "15:04:05"
	switch span := end.Sub(start); {
	case span >= 2*365*24*time.Hour:
		layout = "2006-01-02"
	case span >= 24*time.Hour || start.YearDay() != end.Add(-1).YearDay():
		layout = "Jan 2 15:04"
	}
	tick := func(t time.Time, x float64, anchor string) timeTick {
		return timeTick{X: x, Label: t.Format(layout), Title: t.Format(time.RFC3339Nano), Anchor: anchor}
	}
	ticks := []timeTick{tick(start, 0, "start"), tick(mid, float64(chartWidth)*float64(n/2)/float64(n), "middle"), tick(end, chartWidth, "end")}
	ticks[2].Label += " " + end.Format("MST")
	for i := range ticks {
		ticks[i].X = math.Round(ticks[i].X*10) / 10
	}
	return ticks
}

// addSteps is t plus k steps, a few at a time: the steps of a range from
// 1678 to 2261 overflow a time.Duration, 16 of any step do not.
func addSteps(t time.Time, k int64, step time.Duration) time.Time {
	for k > 0 {
		c := min(k, 16)
		t = t.Add(time.Duration(c) * step)
		k -= c
	}
	return t
}

// fmtStep writes a step as the page names it: 1s, 30s, 5m, 1h, 2 days.
func fmtStep(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return fmtAge(d)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// pageBreakdownRows is how many rows of each breakdown the page shows.
const pageBreakdownRows = 20

// breakdownModel is one breakdown table of the page.
type breakdownModel struct {
	ID, Title, By string
	Rows          []breakdownRowModel
	// More counts the rows not shown.
	More int
}

// breakdownRowModel is a row with its doors; the doors are empty for the
// row of the operations without the fact, which no filter selects.
type breakdownRowModel struct {
	model.BreakdownRow
	Label                   string
	Count, Errors, P50, P99 template.URL
}

// breakdownModel lists the top rows of b with their doors.
func (m *pageModel) breakdownModel(b *model.Breakdown) breakdownModel {
	bm := breakdownModel{ID: "breakdown-" + b.Op + "-" + b.By, Title: opLabel(b.Op) + " by " + b.By, By: b.By}
	for i, r := range b.Rows {
		if i == pageBreakdownRows {
			bm.More = len(b.Rows) - i
			break
		}
		rm := breakdownRowModel{BreakdownRow: r, Label: r.Key}
		if r.Key == "" {
			rm.Label = "(none)"
		} else {
			name, value := b.By, r.Key
			if b.By == "subscribers" {
				name, value = "attr", attrArg(string(schema.SubscribersKey), r.Key)
			}
			rm.Count = m.Door("op", b.Op, name, value)
			rm.Errors = m.Door("op", b.Op, name, value, "status", "error")
			rm.P50 = m.Door("op", b.Op, name, value, "min_ms", msArg(r.DurationMs.P50()))
			rm.P99 = m.Door("op", b.Op, name, value, "min_ms", msArg(r.DurationMs.P99()))
		}
		bm.Rows = append(bm.Rows, rm)
	}
	return bm
}

// MapTopics is how many topics the page's map draws; the others share
// one node, OtherTopicsID.
const MapTopics = 30

// OtherTopicsID is the id of the map's node of the topics not drawn.
const OtherTopicsID = "other topics"

// Map is the pub/sub map to draw, its counts finished: the services
// that notify and those that receive, the busiest topics, and the edges
// between them, those of the other topics merged per service and
// operation into edges of the OtherTopicsID node.
type Map struct {
	// Publishers, Topics and Receivers are the three columns, each the
	// busiest first; a service without service.name has the label "".
	Publishers, Topics, Receivers []MapNode
	// AllTopics counts every topic; Other holds the count of the topics
	// not drawn and of their operations.
	AllTopics int
	Other     MapNode
	// Edges have the ids of the nodes as From and To.
	Edges []model.MapEdge
}

// MapNode is a node of the map: a service or a topic, and how many
// operations went through it.
type MapNode struct {
	ID, Label string
	Count     int64
}

// mapModel is the pub/sub map drawn in three columns: publishing
// services, topics, receiving services.
type mapModel struct {
	Width, Height float64
	Nodes         []mapNodeModel
	Edges         []mapEdgeModel
	// Topics counts every topic, OtherTopics those in the "other topics"
	// node.
	Topics, OtherTopics int
}

type mapNodeModel struct {
	X, Y, W, H   float64
	TextX, TextY float64
	Label, Title string
	Door         template.URL
	Other        bool
}

type mapEdgeModel struct {
	D     string
	Width float64
	Op    string
	Title string
	Door  template.URL
}

const mapNodeW, mapRowH, mapWidth = 190.0, 24.0, 800.0

// mapModel lays out pm.
func (m *pageModel) mapModel(pm *Map) *mapModel {
	if pm == nil || len(pm.Edges) == 0 {
		return nil
	}
	mm := &mapModel{Width: mapWidth, Topics: pm.AllTopics, OtherTopics: pm.AllTopics - len(pm.Topics)}
	labels := make(map[string]string)
	for _, col := range [][]MapNode{pm.Publishers, pm.Topics, pm.Receivers} {
		for _, n := range col {
			labels[n.ID] = n.Label
		}
	}
	type place struct{ x, y float64 }
	at := make(map[string]place) // by column and id
	add := func(col int, id, label, title string, door template.URL, other bool, row int) {
		x := [3]float64{0, (mapWidth - mapNodeW) / 2, mapWidth - mapNodeW}[col]
		y := float64(row)*mapRowH + 2
		at[strconv.Itoa(col)+id] = place{x, y + (mapRowH-4)/2}
		mm.Nodes = append(mm.Nodes, mapNodeModel{X: x, Y: y, W: mapNodeW, H: mapRowH - 4, TextX: x + 5, TextY: y + 14,
			Label: clipLabel(label), Title: title, Door: door, Other: other})
	}
	serviceNode := func(col int, n MapNode, row int, verb string) {
		label, door := n.Label, m.Door("service", n.Label)
		if n.Label == "" {
			label, door = "(no service.name)", ""
		}
		add(col, n.ID, label, fmt.Sprintf("service %s: %s %s", label, fmtCount(n.Count), verb), door, false, row)
	}
	for i, n := range pm.Publishers {
		serviceNode(0, n, i, "notifies")
	}
	for i, n := range pm.Topics {
		add(1, n.ID, n.Label, fmt.Sprintf("topic %s: %s notifies and receives", n.Label, fmtCount(n.Count)), m.Door("topic", n.Label), false, i)
	}
	if mm.OtherTopics > 0 {
		add(1, OtherTopicsID, fmt.Sprintf("%d other topics", mm.OtherTopics), fmt.Sprintf("%d other topics: %s notifies and receives (see the breakdowns by topic)", mm.OtherTopics, fmtCount(pm.Other.Count)), "#breakdown-notify-topic", true, len(pm.Topics))
	}
	for i, n := range pm.Receivers {
		serviceNode(2, n, i, "receives")
	}
	rows := max(len(pm.Publishers), len(pm.Receivers), len(pm.Topics)+min(mm.OtherTopics, 1))
	mm.Height = float64(rows)*mapRowH + 4
	var most int64
	for _, e := range pm.Edges {
		most = max(most, e.Count)
	}
	for _, e := range pm.Edges {
		from, to := at["0"+e.From], at["1"+e.To]
		topic, service := e.To, e.From
		if e.Op == schema.OpReceive {
			from, to = at["1"+e.From], at["2"+e.To]
			topic, service = e.From, e.To
		}
		x1, x2 := from.x+mapNodeW, to.x
		em := mapEdgeModel{
			D:     fmt.Sprintf("M %.1f %.1f C %.1f %.1f, %.1f %.1f, %.1f %.1f", x1, from.y, (x1+x2)/2, from.y, (x1+x2)/2, to.y, x2, to.y),
			Width: roundPx(1 + 5*math.Log1p(float64(e.Count))/math.Log1p(float64(most))),
			Op:    e.Op,
		}
		svcName, topicName := labels[service], labels[topic]
		em.Title = fmt.Sprintf("%s %s %s: %s, %s failed", svcName, map[string]string{schema.OpNotify: "notifies", schema.OpReceive: "receives from"}[e.Op], topicName, fmtCount(e.Count), fmtCount(e.Errors))
		if topic == OtherTopicsID {
			em.Title = fmt.Sprintf("%s %s %d other topics: %s, %s failed", svcName, map[string]string{schema.OpNotify: "notifies", schema.OpReceive: "receives from"}[e.Op], mm.OtherTopics, fmtCount(e.Count), fmtCount(e.Errors))
			em.Door = template.URL("#breakdown-" + e.Op + "-topic")
		} else {
			em.Title += ", p99 " + exactMs(e.P99Ms)
			if e.Approximate {
				em.Title += " (≈, estimated within 1 %)"
			}
			em.Door = m.Door("op", e.Op, "service", svcName, "topic", topicName)
			if svcName == "" {
				em.Door = m.Door("op", e.Op, "topic", topicName)
			}
		}
		mm.Edges = append(mm.Edges, em)
	}
	slices.SortFunc(mm.Edges, func(a, b mapEdgeModel) int { return cmp.Compare(a.Width, b.Width) })
	return mm
}

// clipLabel shortens a node's label to what its box holds.
func clipLabel(s string) string {
	r := []rune(s)
	if len(r) <= 28 {
		return s
	}
	return strings.TrimSpace(string(r[:27])) + "…"
}
