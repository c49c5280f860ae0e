package viewer

import (
	"cmp"
	"context"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/opstore"
	"github.com/lonelytrace/lonelytrace/viewer/internal/page"
	"github.com/lonelytrace/lonelytrace/viewer/internal/quantiles"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// Node ids of the pub/sub map: a kind, a colon, the label.
const (
	serviceNodePrefix = "service:"
	topicNodePrefix   = "topic:"
)

// mapEdgeKey is an edge of the map: an operation between a service and a
// topic (its direction follows from the operation).
type mapEdgeKey struct {
	op             uint8
	service, topic string
}

// mapAcc gathers the notifies and receives of a window by service and
// topic.
type mapAcc struct {
	edges map[mapEdgeKey]*groupAcc
	ex    *quantiles.Exactness
}

func newMapAcc(ex *quantiles.Exactness) *mapAcc {
	return &mapAcc{edges: make(map[mapEdgeKey]*groupAcc), ex: ex}
}

// visitor is the mapAcc's opstore.Visitor; it finds each span's edge
// once per pair of strings of the file, not once per span.
func (a *mapAcc) visitor(strs []string) func(*opstore.Span) {
	type pair struct {
		op             uint8
		service, topic uint32
	}
	byIDs := make(map[pair]*groupAcc)
	return func(o *opstore.Span) {
		if o.Op != schema.NotifyIndex && o.Op != schema.ReceiveIndex || o.Topic == 0 {
			return
		}
		p := pair{o.Op, o.Service, o.Topic}
		g := byIDs[p]
		if g == nil {
			k := mapEdgeKey{o.Op, strs[o.Service], strs[o.Topic]}
			if g = a.edges[k]; g == nil {
				g = newGroupAcc(a.ex)
				a.edges[k] = g
			}
			byIDs[p] = g
		}
		g.add(o)
	}
}

// pubsubMap returns the nodes and edges gathered.
func (a *mapAcc) pubsubMap() *model.PubSubMap {
	m := &model.PubSubMap{Nodes: []model.MapNode{}, Edges: make([]model.MapEdge, 0, len(a.edges))}
	services, topics := make(map[string]bool), make(map[string]bool)
	for k, g := range a.edges {
		e := model.MapEdge{Op: schema.Operations[k.op], Count: g.count, Errors: g.errors, P99Ms: g.percentiles().P99(), Approximate: g.approximate()}
		s, t := serviceNodePrefix+k.service, topicNodePrefix+k.topic
		e.From, e.To = s, t
		if k.op == schema.ReceiveIndex {
			e.From, e.To = t, s
		}
		m.Edges = append(m.Edges, e)
		services[k.service], topics[k.topic] = true, true
	}
	for _, s := range slices.Sorted(maps.Keys(services)) {
		m.Nodes = append(m.Nodes, model.MapNode{ID: serviceNodePrefix + s, Kind: "service", Label: s})
	}
	for _, t := range slices.Sorted(maps.Keys(topics)) {
		m.Nodes = append(m.Nodes, model.MapNode{ID: topicNodePrefix + t, Kind: "topic", Label: t})
	}
	slices.SortFunc(m.Edges, func(x, y model.MapEdge) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To))
	})
	return m
}

// PubSubMap computes the pub/sub map of q's window and filters (the
// answer of /api/map). A bad query is a *ParseError.
func (v *Viewer) PubSubMap(ctx context.Context, q Query) (*model.PubSubMap, error) {
	if err := q.check(v.loc); err != nil {
		return nil, err
	}
	w, err := v.plan(ctx, newFilter(q), true)
	if err != nil {
		return nil, err
	}
	acc := newMapAcc(w.ex)
	if err := w.visit(ctx, acc.visitor); err != nil {
		return nil, err
	}
	m := acc.pubsubMap()
	m.Coverage = v.jaeger.coverage(time.Unix(0, w.flt.Since))
	return m, nil
}

// pageMap folds pm for the page's map: the page.MapTopics busiest topics
// drawn, the rest in one node whose edges are merged per service and
// operation, and services by how busy they are. Nil when pm has no edge.
func pageMap(pm *model.PubSubMap) *page.Map {
	if len(pm.Edges) == 0 {
		return nil
	}
	labels := make(map[string]string, len(pm.Nodes))
	for _, n := range pm.Nodes {
		labels[n.ID] = n.Label
	}
	topicCount := make(map[string]int64)
	pubCount, recvCount := make(map[string]int64), make(map[string]int64)
	for _, e := range pm.Edges {
		if e.Op == schema.OpNotify {
			topicCount[e.To] += e.Count
			pubCount[e.From] += e.Count
		} else {
			topicCount[e.From] += e.Count
			recvCount[e.To] += e.Count
		}
	}
	busiest := func(counts map[string]int64) []page.MapNode {
		nodes := make([]page.MapNode, 0, len(counts))
		for id, n := range counts {
			nodes = append(nodes, page.MapNode{ID: id, Label: labels[id], Count: n})
		}
		slices.SortFunc(nodes, func(a, b page.MapNode) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.ID, b.ID)) })
		return nodes
	}
	topics := busiest(topicCount)
	out := &page.Map{Publishers: busiest(pubCount), Receivers: busiest(recvCount), Topics: topics, AllTopics: len(topics),
		Other: page.MapNode{ID: page.OtherTopicsID}}
	if len(topics) > page.MapTopics {
		out.Topics = topics[:page.MapTopics]
		for _, n := range topics[page.MapTopics:] {
			out.Other.Count += n.Count
		}
	}
	shown := make(map[string]bool, len(out.Topics))
	for _, n := range out.Topics {
		shown[n.ID] = true
	}
	// Edges to the other topics are merged per service and operation.
	type otherKey struct{ service, op string }
	others := make(map[otherKey]*model.MapEdge)
	for _, e := range pm.Edges {
		topic, service := e.To, e.From
		if e.Op == schema.OpReceive {
			topic, service = e.From, e.To
		}
		if shown[topic] {
			out.Edges = append(out.Edges, e)
			continue
		}
		k := otherKey{service, e.Op}
		o := others[k]
		if o == nil {
			o = &model.MapEdge{Op: e.Op, From: service, To: page.OtherTopicsID}
			if e.Op == schema.OpReceive {
				o.From, o.To = page.OtherTopicsID, service
			}
			others[k] = o
		}
		o.Count += e.Count
		o.Errors += e.Errors
		o.P99Ms = math.NaN() // a p99 of p99s is no p99
	}
	for _, k := range slices.SortedFunc(maps.Keys(others), func(a, b otherKey) int {
		return cmp.Or(cmp.Compare(a.service, b.service), cmp.Compare(a.op, b.op))
	}) {
		out.Edges = append(out.Edges, *others[k])
	}
	return out
}
