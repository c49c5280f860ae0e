package viewer

import (
	"context"
	"time"
)

// SetPool replaces the viewer's bound on requests computed at once; call
// it before Register.
func SetPool(v *Viewer, slots, queue int, wait time.Duration) {
	v.pool = newPool(slots, queue, wait)
}

// SetPoolHold makes every computation of the pool run hold first, with
// the request's context.
func SetPoolHold(v *Viewer, hold func(context.Context)) { v.pool.hold = hold }

// PoolCounts is what the pool has done and holds now.
type PoolCounts struct {
	Computed, Joined, Refused int64
	Running, Queued           int
}

// PoolCountsOf returns v's pool counts.
func PoolCountsOf(v *Viewer) PoolCounts {
	p := v.pool
	return PoolCounts{Computed: p.computed.Load(), Joined: p.joined.Load(), Refused: p.refused.Load(), Running: len(p.slots), Queued: len(p.queue)}
}
