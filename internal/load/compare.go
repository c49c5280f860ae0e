package load

import (
	"context"
	"fmt"
)

// Comparison is the result of Compare: one run per mode, in Modes order,
// and the ratios of the performance targets.
type Comparison struct {
	Runs []Result `json:"runs"`
	// StoredVsPlain is lonelytrace's stored spans/s over plain's.
	StoredVsPlain float64 `json:"stored_vs_plain"`
	// CPUVsDiscard is lonelytrace's process CPU per span over discard's;
	// ProducerVsDiscard the same for the producers' wall time per span,
	// the application's side alone.
	CPUVsDiscard      float64 `json:"cpu_vs_discard"`
	ProducerVsDiscard float64 `json:"producer_vs_discard"`
	// ProducerCPUVsDiscard is the same for the CPU time of the producers'
	// threads: the application's own cost, without the time it waited
	// for a core.
	ProducerCPUVsDiscard float64 `json:"producer_cpu_vs_discard,omitempty"`
}

// Run returns the run of mode, and whether there is one.
func (c Comparison) Run(mode Mode) (Result, bool) {
	for _, r := range c.Runs {
		if r.Mode == mode {
			return r, true
		}
	}
	return Result{}, false
}

// Compare runs every mode of Modes one after the other with the same
// options and computes the ratios. It stops at the first mode that fails,
// returning the runs so far.
func Compare(ctx context.Context, opts ...Option) (Comparison, error) {
	var c Comparison
	for _, m := range Modes {
		if ctx.Err() != nil {
			return c, ctx.Err()
		}
		r, err := Run(ctx, m, opts...)
		if err != nil {
			return c, fmt.Errorf("compare: %w", err)
		}
		c.Runs = append(c.Runs, r)
	}
	lt, _ := c.Run(Lonelytrace)
	if p, _ := c.Run(Plain); p.StoredPerSec > 0 {
		c.StoredVsPlain = lt.StoredPerSec / p.StoredPerSec
	}
	if d, _ := c.Run(Discard); d.CPUPerSpan > 0 && d.ProducerPerSpan > 0 {
		c.CPUVsDiscard = float64(lt.CPUPerSpan) / float64(d.CPUPerSpan)
		c.ProducerVsDiscard = float64(lt.ProducerPerSpan) / float64(d.ProducerPerSpan)
		if d.ProducerCPUPerSpan > 0 {
			c.ProducerCPUVsDiscard = float64(lt.ProducerCPUPerSpan) / float64(d.ProducerCPUPerSpan)
		}
	}
	return c, nil
}
