package reeve

import (
	"context"
	"github.com/reevehq/reeve/internal/engine"
	"sync/atomic"
	"testing"
	"time"
)

// TestCachedResultExpires: freshness is the age of the stored entry (its
// modification time in the store) against the run's clock.
func TestCachedResultExpires(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	task := NewTask0(t.Name()+"/task/"+engine.NewID(), func(context.Context) (int, error) { return int(calls.Add(1)), nil }, CacheFor(time.Hour))
	f := NewFlow("expiry", Results(t.TempDir()))
	ref := task.Bind(f)
	clock := time.Now()
	o := RunOptions{now: func() time.Time { return clock }}
	for _, tc := range []struct {
		advance time.Duration
		want    Kind
		value   int
	}{
		{0, Success, 1},
		{59 * time.Minute, Cached, 1},
		{2 * time.Minute, Success, 2}, // 61 minutes after it was written
	} {
		clock = clock.Add(tc.advance)
		run, err := f.Run(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := run.Of(ref)
		v, _ := ResultOf(run, ref)
		if got.State.Kind != tc.want || v != tc.value {
			t.Errorf("after %v: %s with %d, want %s with %d", tc.advance, got.State, v, tc.want, tc.value)
		}
	}
}
