package reeve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve"
)

type fullTasks struct {
	ids    *reeve.Task2[int, []int, []int]
	fetch  *reeve.Task2[int, map[string]string, string]
	join   *reeve.Task2[[]string, string, string]
	always reeve.Trigger
}

// fullFlow uses every option a spec carries.
func fullFlow(t *testing.T, tweak func(f *reeve.Flow)) (*reeve.Flow, reeve.Ref[string]) {
	return registerFull(t).build(t, tweak)
}

func registerFull(t *testing.T) *fullTasks {
	ids := reeve.NewTask2(tn(t, "ids"), func(_ context.Context, n int, skip []int) ([]int, error) {
		var out []int
		for i := range n {
			if !contains(skip, i) {
				out = append(out, i)
			}
		}
		return out, nil
	})
	fetch := reeve.NewTask2(tn(t, "fetch"), func(_ context.Context, id int, cfg map[string]string) (string, error) {
		return fmt.Sprintf("%s%d", cfg["prefix"], id), nil
	})
	join := reeve.NewTask2(tn(t, "join"), func(_ context.Context, parts []string, sep string) (string, error) {
		return strings.Join(parts, sep), nil
	})
	always := reeve.NewTrigger(tn(t, "always"), func([]reeve.UpstreamState) bool { return true })
	return &fullTasks{ids, fetch, join, always}
}

func (ft *fullTasks) build(t *testing.T, tweak func(f *reeve.Flow)) (*reeve.Flow, reeve.Ref[string]) {
	ids, fetch, join := ft.ids, ft.fetch, ft.join
	f := reeve.NewFlow("full",
		reeve.Description("every option"),
		reeve.Labels("gpu", "eu"),
		reeve.Results("mem://"+t.Name()),
		reeve.Secrets("DB_PASSWORD"),
		reeve.Env("DB_HOST"),
		reeve.EnvFromAgent("NODE_NAME"),
		reeve.Schedule("*/15 * * * *", "Europe/Paris"),
	)
	n := reeve.Param[int](f, "n")
	skip := reeve.Param(f, "skip", reeve.Default([]int{2}))
	sep := reeve.Param(f, "sep", reeve.Default(","))
	list := ids.Bind(f, n, skip, reeve.Retries(3, time.Second), reeve.Backoff(2, time.Minute), reeve.Tags("io", "slow"))
	cfg := reeve.Const(f, map[string]string{"prefix": "#"})
	fetched := fetch.Map(f, reeve.Each(list), reeve.Unmapped(cfg),
		reeve.Timeout(30*time.Second), reeve.CacheFor(time.Hour), reeve.Serializer("gob"), reeve.ResultStore("mem://"+t.Name()+"/fetch"))
	joined := join.Bind(f, fetched, sep, reeve.Checkpoint(), reeve.When(reeve.AllFinished), reeve.SkipOnUpstreamSkip(false), reeve.Name("joined"))
	cleanup := join.Bind(f, reeve.Const(f, []string{"done"}), reeve.Const(f, ""), reeve.Name("cleanup"), reeve.After(joined),
		reeve.When(ft.always))
	f.ReferenceTasks(joined, cleanup)
	if tweak != nil {
		tweak(f)
	}
	return f, joined
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestSpecRoundTripKeepsEveryOption(t *testing.T) {
	t.Parallel()
	f, joined := fullFlow(t, nil)
	var first bytes.Buffer
	if err := f.Save(&first); err != nil {
		t.Fatal(err)
	}
	loaded, err := reeve.LoadFlow(bytes.NewReader(first.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var second bytes.Buffer
	if err := loaded.Save(&second); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Errorf("save → load → save changed the spec:\n%s\n----\n%s", first.String(), second.String())
	}
	h1, _ := f.SpecHash()
	h2, _ := loaded.SpecHash()
	if h1 != h2 || !strings.HasPrefix(h1, "sha256:") {
		t.Errorf("hashes %s and %s", h1, h2)
	}
	for _, want := range []string{`"retries": 3`, `"retry_delay": "1s"`, `"backoff": 2`, `"max_retry_delay": "1m0s"`,
		`"timeout": "30s"`, `"cache_for": "1h0m0s"`, `"serializer": "gob"`, `"checkpoint": true`, `"trigger": "all_finished"`,
		`"skip_on_upstream_skip": false`, `"each": true`, `"after": [`, `"reference_tasks"`, `"from_agent": true`,
		`"Europe/Paris"`, `"labels": [`, `"go_type": "[]int"`, `"required": true`, `"tags": [`, `"kind": "const"`} {
		if !strings.Contains(first.String(), want) {
			t.Errorf("spec lacks %s", want)
		}
	}
	// The loaded flow runs like the original.
	o := reeve.RunOptions{Params: map[string]any{"n": 4}}
	want := result(t, mustRun(t, f, o), joined)
	run := mustRun(t, loaded, o)
	if run.State().Kind != reeve.Success {
		t.Fatal(run.State())
	}
	tr, _ := run.TaskRun("joined")
	if tr.State.Result.Value != want || want != "#0,#1,#3" {
		t.Errorf("loaded flow's result %v, original's %q", tr.State.Result.Value, want)
	}
}

func TestSpecHashChangesWithTheFlow(t *testing.T) {
	t.Parallel()
	ft := registerFull(t)
	base, _ := ft.build(t, nil)
	h0, _ := base.SpecHash()
	if h1, _ := base.SpecHash(); h0 != h1 {
		t.Fatal("hash is not stable")
	}
	if other, _ := ft.build(t, nil); mustHash(t, other) != h0 {
		t.Fatal("the same flow built twice hashes differently")
	}
	extra := reeve.NewTask0(tn(t, "extra"), func(context.Context) (int, error) { return 0, nil })
	seen := map[string]string{h0: "base"}
	for _, tc := range []struct {
		name  string
		tweak func(*reeve.Flow)
	}{
		{"another task", func(f *reeve.Flow) { extra.Bind(f) }},
		{"another parameter", func(f *reeve.Flow) { reeve.Param(f, "extra", reeve.Default(1.5)) }},
		{"another reference task", func(f *reeve.Flow) { f.ReferenceTasks(extra.Bind(f)) }},
	} {
		f, _ := ft.build(t, tc.tweak)
		h := mustHash(t, f)
		if prev, dup := seen[h]; dup {
			t.Errorf("%s: same hash as %s", tc.name, prev)
		}
		seen[h] = tc.name
	}
	// State handlers are Go code, not part of the spec.
	f, _ := ft.build(t, func(f *reeve.Flow) { f.OnFailure(func(context.Context, reeve.StateChange) {}) })
	if mustHash(t, f) != h0 {
		t.Error("a flow handler changed the hash")
	}
}

func mustHash(t *testing.T, f *reeve.Flow) string {
	t.Helper()
	h, err := f.SpecHash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLoadingASpecWithUnknownTasksListsThemAll(t *testing.T) {
	t.Parallel()
	f, _ := fullFlow(t, nil)
	var buf bytes.Buffer
	if err := f.Save(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	tasks := doc["tasks"].([]any)
	tasks[0].(map[string]any)["task"] = "billing.extract"
	tasks[2].(map[string]any)["task"] = "billing.load"
	b, _ := json.Marshal(doc)
	_, err := reeve.LoadFlow(bytes.NewReader(b))
	wantErrContains(t, err, "billing.extract", "billing.load", "2 task(s)", "registered here")

	_, err = reeve.LoadFlow(strings.NewReader(`{"spec_version": 1, "name": "x", "tasks": [], "extra": 1}`))
	wantErrContains(t, err, `unknown field "extra"`)
}

func TestLoadingASpecChecksInputTypes(t *testing.T) {
	t.Parallel()
	f, _ := fullFlow(t, nil)
	var buf bytes.Buffer
	if err := f.Save(&buf); err != nil {
		t.Fatal(err)
	}
	// Feed the []int result of ids into join's string input.
	s := strings.Replace(buf.String(), `"kind": "param",
          "param": "sep"`, `"kind": "task",
          "task": "`+tn(t, "ids")+`"`, 1)
	if s == buf.String() {
		t.Fatal("the test's spec edit did not apply")
	}
	_, err := reeve.LoadFlow(strings.NewReader(s))
	wantErrContains(t, err, `task "joined": input 2 wants string but task "`+tn(t, "ids")+`" gives []int`)
}
