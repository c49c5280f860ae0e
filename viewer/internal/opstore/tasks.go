package opstore

import (
	"runtime"
	"sync"
)

// RunTasks runs task(0..n-1) on up to GOMAXPROCS goroutines (at least two,
// so that one slow query does not hold up the rest) and waits: the bound
// of the queries of one request that run at once.
func RunTasks(n int, task func(i int)) {
	workers := min(max(runtime.GOMAXPROCS(0), 2), n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				task(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}
