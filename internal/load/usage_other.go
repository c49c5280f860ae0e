//go:build !linux

package load

import "time"

// Elsewhere than Linux the run reports no CPU, memory or load figures.

func processCPU() time.Duration { return 0 }
func threadCPU() time.Duration  { return 0 }
func memory() (rss, peak int64) { return 0, 0 }
func resetPeakRSS() bool        { return false }
func loadAverage() float64      { return 0 }
