package reeve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reevehq/reeve"
)

type point struct{ X, Y int }

func TestCheckpointWritesResultAndRecordsWhere(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	make3 := reeve.NewTask0(tn(t, "make"), func(context.Context) ([]point, error) {
		return []point{{1, 2}, {3, 4}}, nil
	}, reeve.Checkpoint())
	f := reeve.NewFlow("ckpt", reeve.Results("file://"+dir))
	make3.Bind(f, reeve.Name("make"))
	run := mustRun(t, f, reeve.RunOptions{})
	s := wantKind(t, run, "make", reeve.Success)
	if !s.Result.Persisted() || s.Result.Store != "file://"+dir || s.Result.Serializer != "json" {
		t.Fatalf("result: %+v", s.Result)
	}
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s.Result.Key)))
	if err != nil {
		t.Fatalf("the recorded location has no file: %v", err)
	}
	var back []point
	if err := json.Unmarshal(data, &back); err != nil || len(back) != 2 || back[1].Y != 4 {
		t.Errorf("stored %s (%v)", data, err)
	}
	if !strings.Contains(s.Result.Key, run.ID()) {
		t.Errorf("key %q is not scoped to the flow run %s", s.Result.Key, run.ID())
	}
}

func TestPersistingWithoutAStoreIsRejectedAtValidation(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	task := reeve.NewTask0(tn(t, "task"), func(context.Context) (int, error) { calls.Add(1); return 1, nil })
	for _, opt := range []reeve.Setting{reeve.Checkpoint(), reeve.CacheFor(time.Hour)} {
		f := reeve.NewFlow("nostore")
		task.Bind(f, opt, reeve.Name("needs-store"))
		_, err := f.Run(t.Context(), reeve.RunOptions{})
		wantErrContains(t, err, `task "needs-store"`, "no result store is configured", "reeve.Results", "--results")
		if err := f.Validate("mem://given-at-run-time"); err != nil {
			t.Errorf("with a store given at run time: %v", err)
		}
	}
	if calls.Load() != 0 {
		t.Error("a task ran although the flow was invalid")
	}
}

func TestStoreWhoseDriverIsNotLinkedNamesTheImport(t *testing.T) {
	t.Parallel()
	task := reeve.NewTask0(tn(t, "task"), func(context.Context) (int, error) { return 1, nil }, reeve.Checkpoint())
	f := reeve.NewFlow("s3", reeve.Results("s3://my-bucket/results"))
	task.Bind(f)
	_, err := f.Run(t.Context(), reeve.RunOptions{})
	wantErrContains(t, err, `import _ "gocloud.dev/blob/s3blob"`)
}

func TestTaskStoreOverridesFlowStore(t *testing.T) {
	t.Parallel()
	own := "mem://" + t.Name() + "/own"
	task := reeve.NewTask0(tn(t, "task"), func(context.Context) (int, error) { return 5, nil })
	f := reeve.NewFlow("stores", reeve.Results("mem://"+t.Name()+"/flow"))
	task.Bind(f, reeve.Checkpoint(), reeve.ResultStore(own), reeve.Name("own"))
	task.Bind(f, reeve.Checkpoint(), reeve.Name("flow"))
	run := mustRun(t, f, reeve.RunOptions{})
	if s := stateOf(t, run, "own"); s.Result.Store != own {
		t.Errorf("task store: %+v", s.Result)
	}
	if s := stateOf(t, run, "flow"); s.Result.Store != "mem://"+t.Name()+"/flow" {
		t.Errorf("flow store: %+v", s.Result)
	}
	run = mustRun(t, f, reeve.RunOptions{Results: "mem://" + t.Name() + "/cli"})
	if s := stateOf(t, run, "flow"); s.Result.Store != "mem://"+t.Name()+"/cli" {
		t.Errorf("--results overrides the flow's store: %+v", s.Result)
	}
}

func TestCacheReusesFreshResults(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	slow := reeve.NewTask1(tn(t, "slow"), func(_ context.Context, p point) (int, error) {
		calls.Add(1)
		return p.X * p.Y, nil
	}, reeve.CacheFor(time.Hour))
	f := reeve.NewFlow("cache", reeve.Results(t.TempDir()))
	slow.Map(f, reeve.Each(reeve.Param(f, "points", reeve.Default([]point{{2, 3}, {4, 5}}))), reeve.Name("slow"))
	run := mustRun(t, f, reeve.RunOptions{})
	wantKind(t, run, "slow[0]", reeve.Success)
	if calls.Load() != 2 {
		t.Fatalf("first run: %d calls", calls.Load())
	}
	run = mustRun(t, f, reeve.RunOptions{Params: map[string]any{"points": []point{{2, 3}, {6, 7}}}})
	s := wantKind(t, run, "slow[0]", reeve.Cached)
	if s.Result.Value != 6 || !strings.Contains(s.Message, "cache") {
		t.Errorf("cached state: %+v", s)
	}
	wantKind(t, run, "slow[1]", reeve.Success) // new inputs, new key
	if calls.Load() != 3 {
		t.Errorf("second run called the task %d times in all, want 3", calls.Load())
	}
	if run.State().Kind != reeve.Success {
		t.Errorf("flow with cached tasks: %s", run.State())
	}
}

// upper is a serializer that stores JSON in upper case, to show that
// results go through the chosen serializer.
type upper struct{}

var registerUpper sync.Once

func (upper) Name() string { return "upper" }
func (upper) Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return bytes.ToUpper(b), err
}
func (upper) Unmarshal(data []byte, v any) error { return json.Unmarshal(bytes.ToLower(data), v) }

func TestPluggableSerializer(t *testing.T) {
	t.Parallel()
	registerUpper.Do(func() {
		if err := reeve.RegisterSerializer(upper{}); err != nil {
			t.Fatal(err)
		}
	})
	dir := t.TempDir()
	task := reeve.NewTask0(tn(t, "task"), func(context.Context) (string, error) { return "shout", nil })
	f := reeve.NewFlow("ser", reeve.Results(dir))
	task.Bind(f, reeve.Checkpoint(), reeve.Serializer("upper"), reeve.Name("task"))
	task.Bind(f, reeve.Checkpoint(), reeve.Serializer("gob"), reeve.Name("gob"))
	run := mustRun(t, f, reeve.RunOptions{})
	s := wantKind(t, run, "task", reeve.Success)
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s.Result.Key)))
	if err != nil || string(data) != `"SHOUT"` || s.Result.Serializer != "upper" {
		t.Errorf("stored %q (%v), result %+v", data, err, s.Result)
	}
	if s := wantKind(t, run, "gob", reeve.Success); s.Result.Serializer != "gob" || !strings.HasSuffix(s.Result.Key, ".gob") {
		t.Errorf("gob result: %+v", s.Result)
	}
	f2 := reeve.NewFlow("ser2", reeve.Results(dir))
	task.Bind(f2, reeve.Checkpoint(), reeve.Serializer("yaml"))
	var buf bytes.Buffer
	if err := f2.Save(&buf); err == nil {
		if _, err := reeve.LoadFlow(&buf); err == nil || !strings.Contains(err.Error(), "yaml") {
			t.Errorf("loading a spec with an unknown serializer: %v", err)
		}
	}
}
