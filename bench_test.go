package reeve_test

// Benchmarks of the engine's own cost: flows of no-op tasks, so what is
// measured is scheduling, state keeping and result passing, not work.
// docs/performance.md gives the figures, the targets and the commands.
//
// CI runs them once to check they still build and behave:
//
//	go test -run '^$' -bench . -benchtime 1x .

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve"
)

// The benchmark tasks: registered once per program, like any task.
var (
	benchInc = reeve.NewTask1("bench.inc", func(_ context.Context, n int) (int, error) {
		return n + 1, nil
	})
	benchRange = reeve.NewTask1("bench.range", func(_ context.Context, n int) ([]int, error) {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	})
	benchSum = reeve.NewTask1("bench.sum", func(_ context.Context, xs []int) (int, error) {
		s := 0
		for _, x := range xs {
			s += x
		}
		return s, nil
	})
)

// benchExecutors are the executors every benchmark runs under. Parallel
// uses the default pool (4 workers per CPU), as a user who does not tune
// it would.
var benchExecutors = []reeve.Executor{reeve.Sequential, reeve.Parallel}

// chainFlow builds a chain of n tasks, each adding 1 to the previous
// result; the last result is n.
func chainFlow(n int) (*reeve.Flow, reeve.Ref[int]) {
	f := reeve.NewFlow("bench-chain")
	ref := reeve.Const(f, 0)
	for range n {
		ref = benchInc.Bind(f, ref)
	}
	return f, ref
}

// fanOutFlow builds range(n) → inc mapped over each element (n children) →
// sum; the sum is n(n+1)/2. It has n+3 task runs: range, the mapped parent,
// its n children and sum.
func fanOutFlow(n int) (*reeve.Flow, reeve.Ref[int]) {
	f := reeve.NewFlow("bench-fanout")
	list := benchRange.Bind(f, reeve.Const(f, n))
	incs := benchInc.Map(f, reeve.Each(list))
	return f, benchSum.Bind(f, incs)
}

// runFlow runs f and fails the benchmark unless the run succeeded with
// want as the result of ref, so a benchmark cannot be fast by being wrong.
func runFlow(b *testing.B, f *reeve.Flow, ref reeve.Ref[int], want int, ex reeve.Executor) {
	run, err := f.Run(b.Context(), reeve.RunOptions{Executor: ex})
	if err != nil {
		b.Fatalf("run %s: %v", f.Name(), err)
	}
	if s := run.State(); s.Kind != reeve.Success {
		b.Fatalf("run %s ended %s, want Success", f.Name(), s)
	}
	got, err := reeve.ResultOf(run, ref)
	if err != nil {
		b.Fatal(err)
	}
	if got != want {
		b.Fatalf("run %s: result %d, want %d", f.Name(), got, want)
	}
}

// reportPerTask reports the time of one op divided among tasks task runs.
func reportPerTask(b *testing.B, tasks int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(tasks), "ns/task")
}

// BenchmarkChain10k runs a chain of 10,000 no-op tasks, each waiting for
// the one before: the engine's per-task overhead with no parallelism to
// gain. The flow is built once; only Run is timed.
func BenchmarkChain10k(b *testing.B) {
	const n = 10_000
	for _, ex := range benchExecutors {
		b.Run(string(ex), func(b *testing.B) {
			f, last := chainFlow(n)
			b.ResetTimer()
			for range b.N {
				runFlow(b, f, last, n, ex)
			}
			reportPerTask(b, n)
		})
	}
}

// BenchmarkFanOut10k maps a no-op task over a list of 10,000 elements and
// sums the children's results. ns/task is per mapped child. The flow is
// built once; only Run is timed.
func BenchmarkFanOut10k(b *testing.B) {
	const n = 10_000
	for _, ex := range benchExecutors {
		b.Run(string(ex), func(b *testing.B) {
			f, sum := fanOutFlow(n)
			b.ResetTimer()
			for range b.N {
				runFlow(b, f, sum, n*(n+1)/2, ex)
			}
			reportPerTask(b, n)
		})
	}
}

// Benchmark100k is a user's 100,000-task flow, built and run: a chain of
// 100,000 tasks, and a fan-out to 100,000 mapped children. Building and
// running are both timed (s/flow; build-s/flow is the building part). The
// heap is sampled during each op, after a GC: peak-heap-MB is the largest
// heap seen, live objects and garbage not yet collected.
func Benchmark100k(b *testing.B) {
	const n = 100_000
	shapes := []struct {
		name  string
		build func(int) (*reeve.Flow, reeve.Ref[int])
		want  int
	}{
		{"chain", chainFlow, n},
		{"fanout", fanOutFlow, n * (n + 1) / 2},
	}
	for _, sh := range shapes {
		for _, ex := range benchExecutors {
			b.Run(sh.name+"/"+string(ex), func(b *testing.B) {
				var peak uint64
				var build time.Duration
				for range b.N {
					b.StopTimer()
					runtime.GC()
					s := startHeapSampler()
					b.StartTimer()
					t0 := time.Now()
					f, ref := sh.build(n)
					build += time.Since(t0)
					runFlow(b, f, ref, sh.want, ex)
					b.StopTimer()
					peak = max(peak, s.stop())
					b.StartTimer()
				}
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/flow")
				b.ReportMetric(build.Seconds()/float64(b.N), "build-s/flow")
				reportPerTask(b, n)
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			})
		}
	}
}

const heapMetric = "/memory/classes/heap/objects:bytes"

// heapSampler records the largest heap size it sees, reading it every
// millisecond through runtime/metrics, which does not stop the world.
type heapSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

func readHeap(s []metrics.Sample) uint64 {
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{done: make(chan struct{})}
	s := []metrics.Sample{{Name: heapMetric}}
	h.peak = readHeap(s)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.done:
				h.peak = max(h.peak, readHeap(s))
				return
			case <-t.C:
				h.peak = max(h.peak, readHeap(s))
			}
		}
	}()
	return h
}

// stop ends sampling and returns the peak heap in bytes.
func (h *heapSampler) stop() uint64 {
	close(h.done)
	h.wg.Wait()
	return h.peak
}
