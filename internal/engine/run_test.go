package engine

import (
	"context"
	"maps"
	"testing"
)

// TestRootFinishedAtOnce: a root task run that finishes while the roots are
// being prepared (here a mapped task over an empty list) must not make its
// downstream task run twice.
func TestRootFinishedAtOnce(t *testing.T) {
	t.Parallel()
	var calls counter
	b := newGraph("roots")
	m := b.mapped("double", def1("double", func(_ context.Context, x int) (int, error) { calls.add("double"); return 2 * x, nil }),
		Arg{Kind: ArgConst, Value: []int{}, Each: true})
	b.add("sum", def1("sum", func(_ context.Context, xs []int) (int, error) { calls.add("sum"); return len(xs), nil }), from(m))
	for _, workers := range []int{1, 4} {
		calls = counter{}
		run, err := Execute(t.Context(), &b.g, Config{Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := calls.snapshot(), map[string]int{"sum": 1}; !maps.Equal(got, want) {
			t.Errorf("workers=%d: calls %v, want %v (flow run %s)", workers, got, want, run.State)
		}
	}
}
