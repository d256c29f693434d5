package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// BatchSize is the number of task-state writes in one WriteTaskRunStates
// call of the benchmarks, about what the engine's reporter sends at once.
const BatchSize = 100

// RunBenchmarks measures a store. open must return an empty, migrated store
// of its own for each call and close it when the benchmark ends. Each
// benchmark reports writes/s, the task-state writes applied per second.
func RunBenchmarks(b *testing.B, open func(b *testing.B) store.Store) {
	b.Run("WriteTaskRunStates", func(b *testing.B) {
		s := open(b)
		w := newTaskWriter(b, s, "bench")
		b.ReportAllocs()
		for b.Loop() {
			if err := w.batch(); err != nil {
				b.Fatal(err)
			}
		}
		reportWrites(b, w.writes)
	})

	b.Run("WriteTaskRunStatesParallel", func(b *testing.B) {
		s := open(b)
		v := seed(b, s, "bench").version
		var writes, id atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			w := &taskWriter{s: s, version: v, name: fmt.Sprintf("worker-%d", id.Add(1))}
			for pb.Next() {
				if err := w.batch(); err != nil {
					b.Error(err) // not Fatal: this is not the benchmark's goroutine
					break
				}
			}
			writes.Add(int64(w.writes))
		})
		reportWrites(b, int(writes.Load()))
	})
}

func reportWrites(b *testing.B, writes int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(writes)/s, "writes/s")
	}
}

// taskWriter writes task-run states the way a runner does: a batch creates
// BatchSize task runs Pending, the next moves them to Running, the next to
// Success; then it starts over on a new flow run.
type taskWriter struct {
	s       store.Store
	version store.FlowVersion
	name    string
	run     string // the current flow run
	phase   int    // 0 create, 1 run, 2 succeed
	writes  int
	keys    [BatchSize]string
	buf     []store.TaskRunWrite
}

func newTaskWriter(tb testing.TB, s store.Store, name string) *taskWriter {
	tb.Helper()
	return &taskWriter{s: s, version: seed(tb, s, name).version, name: name}
}

var benchKinds = [3]state.Kind{state.Pending, state.Running, state.Success}

func (w *taskWriter) batch() error {
	ctx := context.Background()
	if w.phase == 0 {
		r, _, err := w.s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: w.version.ID})
		if err != nil {
			return fmt.Errorf("%s: CreateFlowRun: %w", w.name, err)
		}
		w.run = r.ID
		if w.keys[0] == "" {
			for i := range w.keys {
				w.keys[i] = fmt.Sprintf("transform[%d]", i)
			}
		}
	}
	now := time.Now()
	w.buf = w.buf[:0]
	for i, k := range w.keys {
		st := state.State{Kind: benchKinds[w.phase], Time: now, Attempt: 1}
		if st.Kind == state.Success {
			st.Result = &state.Result{Store: "file:///var/reeve/results", Key: w.run + "/" + k + ".json", Serializer: "json"}
		}
		w.buf = append(w.buf, store.TaskRunWrite{Key: k, Task: "transform", MapIndex: i, Expect: int64(w.phase), State: st})
	}
	if _, err := w.s.WriteTaskRunStates(ctx, w.run, 0, w.buf); err != nil {
		return fmt.Errorf("%s: WriteTaskRunStates: %w", w.name, err)
	}
	w.writes += len(w.buf)
	w.phase = (w.phase + 1) % len(benchKinds)
	return nil
}
