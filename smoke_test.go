package reeve_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/reevehq/reeve"
)

var (
	sRange  = reeve.NewTask1("smoke.range", func(ctx context.Context, n int) ([]int, error) { out := make([]int, n); for i := range out { out[i] = i }; return out, nil })
	sSquare = reeve.NewTask1("smoke.square", func(ctx context.Context, x int) (int, error) { return x * x, nil })
	sStr    = reeve.NewTask1("smoke.str", func(ctx context.Context, x int) (string, error) { return strconv.Itoa(x), nil })
	sSum    = reeve.NewTask1("smoke.sum", func(ctx context.Context, xs []int) (int, error) { s := 0; for _, x := range xs { s += x }; return s, nil })
)

func TestSmoke(t *testing.T) {
	f := reeve.NewFlow("smoke")
	n := reeve.Param(f, "n", reeve.Default(5))
	xs := sRange.Bind(f, n)
	sq := sSquare.Map(f, reeve.Each(xs))
	_ = sStr.Map(f, reeve.Each(sq))
	total := sSum.Bind(f, sq)
	for _, ex := range []reeve.Executor{reeve.Sequential, reeve.Parallel} {
		run, err := f.Run(t.Context(), reeve.RunOptions{Executor: ex, Params: map[string]any{"n": 4}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := reeve.ResultOf(run, total)
		t.Log(run.State(), got, err)
		for _, tr := range run.TaskRuns() {
			t.Log(tr.Key, tr.State)
		}
	}
}
