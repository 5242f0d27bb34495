package model

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Op timing (bench --op-times): when on, every dettrain op adds its wall time
// and the process's CPU time during it to a table keyed by the op's name
// (kind#number, numbered in the order the graph was built). CPU time over
// wall time is the number of cores the op kept busy.
var opTiming atomic.Bool

var opTimes struct {
	sync.Mutex
	m map[string]*opTime
}

type opTime struct {
	d, cpu time.Duration
	calls  int
}

// EnableOpTimes turns op timing on (true) or off and clears the table.
func EnableOpTimes(on bool) {
	opTimes.Lock()
	opTimes.m = map[string]*opTime{}
	opTimes.Unlock()
	opTiming.Store(on)
}

func timeOp(name string) func() {
	if !opTiming.Load() {
		return func() {}
	}
	t0, c0 := time.Now(), cpuTime()
	return func() {
		d, c := time.Since(t0), cpuTime()-c0
		opTimes.Lock()
		e := opTimes.m[name]
		if e == nil {
			e = &opTime{}
			opTimes.m[name] = e
		}
		e.d += d
		e.cpu += c
		e.calls++
		opTimes.Unlock()
	}
}

// WriteOpTimes prints the op table, slowest first, with each op's share.
func WriteOpTimes(w io.Writer, steps int) {
	opTimes.Lock()
	defer opTimes.Unlock()
	type row struct {
		name string
		t    *opTime
	}
	var rows []row
	var total time.Duration
	for k, v := range opTimes.m {
		rows = append(rows, row{k, v})
		total += v.d
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].t.d > rows[j].t.d })
	var cpu time.Duration
	for _, r := range rows {
		cpu += r.t.cpu
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / float64(max(steps, 1)) }
	fmt.Fprintf(w, "ops: %.1f ms per step in dettrain ops, %.2f cores busy\n", ms(total), float64(cpu)/float64(max(total, 1)))
	for _, r := range rows {
		fmt.Fprintf(w, "  %-22s %8.2f ms/step %5.1f%%  %.2f cores\n", r.name, ms(r.t.d), 100*float64(r.t.d)/float64(total), float64(r.t.cpu)/float64(max(r.t.d, 1)))
	}
}
