package viewer

import (
	"fmt"
	"math"
	"testing"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/internal/page"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// TestPageMap_FoldsOtherTopics checks the map the page draws when a
// window has more topics than it shows: the busiest are drawn, the rest
// are one node whose operations, and whose edges per service and
// operation, add up to theirs, counted here from the edges given.
func TestPageMap_FoldsOtherTopics(t *testing.T) {
	const topics = page.MapTopics + 5
	pm := &model.PubSubMap{}
	for _, s := range []string{"api", "worker"} {
		pm.Nodes = append(pm.Nodes, model.MapNode{ID: serviceNodePrefix + s, Kind: "service", Label: s})
	}
	// Topic i has 2i+1 notifies from api and i receives by worker (none
	// for topic 0), so topic i is busier than topic i-1.
	var otherNotifies, otherReceives, all int64
	for i := range topics {
		id := fmt.Sprintf("%stopic-%02d", topicNodePrefix, i)
		pm.Nodes = append(pm.Nodes, model.MapNode{ID: id, Kind: "topic", Label: id[len(topicNodePrefix):]})
		n, r := int64(2*i+1), int64(i)
		pm.Edges = append(pm.Edges, model.MapEdge{Op: schema.OpNotify, From: serviceNodePrefix + "api", To: id, Count: n, P99Ms: 1})
		if r > 0 {
			pm.Edges = append(pm.Edges, model.MapEdge{Op: schema.OpReceive, From: id, To: serviceNodePrefix + "worker", Count: r, Errors: 1, P99Ms: 1})
		}
		if i < topics-page.MapTopics { // the least busy
			otherNotifies += n
			otherReceives += r
		}
		all += n + r
	}
	m := pageMap(pm)
	if m.AllTopics != topics || len(m.Topics) != page.MapTopics {
		t.Fatalf("topics %d, drawn %d; want %d, %d", m.AllTopics, len(m.Topics), topics, page.MapTopics)
	}
	if first, last := m.Topics[0], m.Topics[len(m.Topics)-1]; first.Label != fmt.Sprintf("topic-%02d", topics-1) || last.Label != fmt.Sprintf("topic-%02d", topics-page.MapTopics) {
		t.Errorf("topics drawn from %s to %s; want the busiest first, down to topic-%02d", first.Label, last.Label, topics-page.MapTopics)
	}
	if m.Other.Count != otherNotifies+otherReceives {
		t.Errorf("other topics count %d; want %d", m.Other.Count, otherNotifies+otherReceives)
	}
	if len(m.Publishers) != 1 || len(m.Receivers) != 1 || m.Publishers[0].Label != "api" || m.Receivers[0].Label != "worker" {
		t.Errorf("publishers %v, receivers %v; want api, worker", m.Publishers, m.Receivers)
	}
	var sum int64
	others := map[string]int64{}
	for _, e := range m.Edges {
		sum += e.Count
		if e.From == page.OtherTopicsID || e.To == page.OtherTopicsID {
			others[e.Op] += e.Count
			if !math.IsNaN(e.P99Ms) {
				t.Errorf("edge %s %s→%s has p99 %g; want none (NaN) for merged edges", e.Op, e.From, e.To, e.P99Ms)
			}
		}
	}
	if sum != all {
		t.Errorf("edges carry %d operations; want all %d", sum, all)
	}
	if others[schema.OpNotify] != otherNotifies || others[schema.OpReceive] != otherReceives {
		t.Errorf("edges of the other topics: %d notifies, %d receives; want %d, %d", others[schema.OpNotify], others[schema.OpReceive], otherNotifies, otherReceives)
	}
	if n := len(m.Edges); n != page.MapTopics*2+2 {
		t.Errorf("%d edges; want %d (two per topic drawn, one per operation to the others)", n, page.MapTopics*2+2)
	}
	if pageMap(&model.PubSubMap{}) != nil {
		t.Error("the map of no edge should be nil")
	}
}
