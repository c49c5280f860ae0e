package viewer_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// TestMap compares the pub/sub map of generated operations, in one file
// and in three with shared spans, with edges counted from the specs.
func TestMap(t *testing.T) {
	ops := genServiceOps(51, 900)
	bases := map[string]string{
		"OneFile":    server(t, mustOpen(t, testNow, writeOps(t, t.TempDir(), "m.db", ops))),
		"ThreeFiles": server(t, mustOpen(t, testNow, writeShared(t, ops)...)),
	}
	for _, c := range []struct {
		name   string
		params url.Values
		f      oracleFilter
	}{
		{"Beginning", url.Values{"since": {"beginning"}}, oracleFilter{since: time.Unix(0, 0), until: testNow}},
		{"Broadcaster24h", url.Values{"broadcaster": {"b2:3003"}}, oracleFilter{since: testNow.Add(-24 * time.Hour), until: testNow, broadcaster: "b2:3003"}},
	} {
		type edge struct {
			count, errors int64
			durs          []float64
		}
		want := map[[3]string]*edge{}
		nodes := map[string]string{}
		for _, o := range ops {
			if o.op != schema.OpNotify && o.op != schema.OpReceive || o.topic == "" || !c.f.match(o) {
				continue
			}
			svc, topic := "service:"+serviceOf(o), "topic:"+o.topic
			nodes[svc], nodes[topic] = "service", "topic"
			k := [3]string{svc, topic, o.op}
			if o.op == schema.OpReceive {
				k = [3]string{topic, svc, o.op}
			}
			e := want[k]
			if e == nil {
				e = &edge{}
				want[k] = e
			}
			e.count++
			if o.failed {
				e.errors++
			}
			e.durs = append(e.durs, ms(o.dur))
		}
		if len(want) < 10 {
			t.Fatalf("%s: %d edges; want a test with more", c.name, len(want))
		}
		for name, base := range bases {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				code, body := get(t, base, "/api/map", c.params)
				if code != http.StatusOK {
					t.Fatalf("status %d: %s", code, body)
				}
				var m model.PubSubMap
				if err := json.Unmarshal(body, &m); err != nil {
					t.Fatal(err)
				}
				if len(m.Nodes) != len(nodes) {
					t.Errorf("%d nodes; want %d", len(m.Nodes), len(nodes))
				}
				for i, n := range m.Nodes {
					if nodes[n.ID] != n.Kind || n.ID != n.Kind+":"+n.Label {
						t.Errorf("node %s", jsonOf(n))
					}
					if i > 0 && (m.Nodes[i-1].Kind == "topic" && n.Kind == "service" || m.Nodes[i-1].Kind == n.Kind && m.Nodes[i-1].Label >= n.Label) {
						t.Errorf("node %d (%s) out of order", i, n.ID)
					}
				}
				if len(m.Edges) != len(want) {
					t.Errorf("%d edges; want %d", len(m.Edges), len(want))
				}
				for i, e := range m.Edges {
					w := want[[3]string{e.From, e.To, e.Op}]
					if w == nil {
						t.Errorf("edge %s not wanted", jsonOf(e))
						continue
					}
					if e.Count != w.count || e.Errors != w.errors || e.P99Ms != oraclePct(w.durs)[5] {
						t.Errorf("edge %s; want count %d, errors %d, p99 %v", jsonOf(e), w.count, w.errors, oraclePct(w.durs)[5])
					}
					if i > 0 && m.Edges[i-1].Count < e.Count {
						t.Errorf("edge %d is larger than the one before", i)
					}
				}
			})
		}
	}
}
