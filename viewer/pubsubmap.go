package viewer

import (
	"github.com/lonelytrace/lonelytrace/viewer/model"

	"cmp"
	"context"
	"maps"
	"net/url"
	"slices"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
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
	ex    *exactness
}

func newMapAcc(ex *exactness) *mapAcc { return &mapAcc{edges: make(map[mapEdgeKey]*groupAcc), ex: ex} }

// visitor is the mapAcc's opVisitor; it finds each span's edge once per
// pair of strings of the file, not once per span.
func (a *mapAcc) visitor(strs []string) func(*opSpan) {
	type pair struct {
		op             uint8
		service, topic uint32
	}
	byIDs := make(map[pair]*groupAcc)
	return func(o *opSpan) {
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

// PubSubMap computes the pub/sub map for the window and filters in
// params (the parameters of /api/map). A bad parameter is a *ParseError.
func (v *Viewer) PubSubMap(ctx context.Context, params url.Values) (*model.PubSubMap, error) {
	q, err := ParseQuery(params, v.now(), v.loc)
	if err != nil {
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
