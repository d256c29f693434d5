package reeve_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve"
)

// A failed upstream of a task that maps child by child over another mapped
// task stops it, even when there are no children.
func TestFailedUpstreamStopsElementwiseMap(t *testing.T) {
	t.Parallel()
	id := reeve.NewTask1(tn(t, "id"), ok[int])
	bad := reeve.NewTask0(tn(t, "bad"), func(context.Context) (int, error) { return 0, errBoom })
	use := reeve.NewTask2(tn(t, "use"), func(_ context.Context, x, y int) (int, error) { return x + y, nil })
	for _, list := range [][]int{{}, {1, 2}} {
		f := reeve.NewFlow("elementwise")
		xs := id.Map(f, reeve.Each(reeve.Const(f, list)))
		use.Map(f, reeve.Each(xs), reeve.Unmapped(bad.Bind(f)), reeve.Name("use"))
		executors(t, func(t *testing.T, o reeve.RunOptions) {
			run := mustRun(t, f, o)
			s := wantKind(t, run, "use", reeve.TriggerFailed)
			if !strings.Contains(s.Message, "bad") {
				t.Errorf("message does not name the failed upstream: %s", s.Message)
			}
			if run.State().Kind != reeve.Failed {
				t.Errorf("flow with %d elements: %s", len(list), run.State())
			}
		})
	}
}

// A task that ignores its context cannot hold a cancelled run past the
// grace period, under either executor.
func TestCancelGraceBoundsTasksIgnoringTheirContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	started := make(chan struct{}, 2)
	deaf := reeve.NewTask0(tn(t, "deaf"), func(ctx context.Context) (int, error) {
		started <- struct{}{}
		reeve.Logger(ctx).Info("before")
		<-release
		reeve.Logger(ctx).Info("after the run ended: dropped")
		return 1, nil
	})
	f := reeve.NewFlow("deaf")
	deaf.Bind(f, reeve.Name("deaf"))
	executors(t, func(t *testing.T, o reeve.RunOptions) {
		ctx, cancel := context.WithCancel(t.Context())
		go func() { <-started; cancel() }()
		o.CancelGrace = 20 * time.Millisecond
		run, err := f.Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		s := wantKind(t, run, "deaf", reeve.Cancelled)
		if !strings.Contains(s.Message, "did not return") {
			t.Errorf("message: %s", s.Message)
		}
		if tr, _ := run.TaskRun("deaf"); len(tr.Logs) != 1 {
			t.Errorf("logs: %d", len(tr.Logs))
		}
	})
}

type creds struct{ User, Token string }

func TestSecretsAreRedactedFromStructuredAttributes(t *testing.T) {
	t.Parallel()
	use := reeve.NewTask0(tn(t, "use"), func(ctx context.Context) (int, error) {
		v, err := reeve.Secret(ctx, "TOKEN")
		if err != nil {
			return 0, err
		}
		reeve.Logger(ctx).Info("call", "headers", map[string]string{"Authorization": "Bearer " + v},
			"creds", creds{"ann", v}, "list", []string{v}, "raw", []byte(v), slog.Any("n", 42))
		return 1, nil
	})
	f := reeve.NewFlow("redact", reeve.Secrets("TOKEN"))
	use.Bind(f, reeve.Name("use"))
	var out bytes.Buffer
	run := mustRun(t, f, reeve.RunOptions{Secrets: staticSecrets{"TOKEN": secretValue}, LogHandler: slog.NewJSONHandler(&out, nil)})
	wantKind(t, run, "use", reeve.Success)
	if strings.Contains(out.String(), secretValue) || strings.Contains(out.String(), "czNjcjN0") /* base64 */ {
		t.Errorf("secret leaked: %s", out.String())
	}
	if strings.Count(out.String(), "[REDACTED]") != 4 || !strings.Contains(out.String(), `"n":42`) {
		t.Errorf("log: %s", out.String())
	}
}

type staticSecrets map[string]string

func (s staticSecrets) Secret(_ context.Context, name string) (string, error) { return s[name], nil }

func TestPanicsInTriggersCacheKeysAndSerializersFailTheTask(t *testing.T) {
	t.Parallel()
	boom := reeve.NewTrigger(tn(t, "boom"), func([]reeve.UpstreamState) bool { panic("trigger bug") })
	one := reeve.NewTask0(tn(t, "one"), func(context.Context) (int, error) { return 1, nil })
	keyed := reeve.NewTask1(tn(t, "keyed"), ok[int], reeve.CacheFor(time.Hour),
		reeve.CacheKey(func(string, []any) (string, error) { panic("key bug") }))
	f := reeve.NewFlow("panics", reeve.Results("mem://"+t.Name()))
	a := one.Bind(f, reeve.Name("a"))
	one.Bind(f, reeve.Name("triggered"), reeve.After(a), reeve.When(boom))
	keyed.Bind(f, a, reeve.Name("keyed"))
	run := mustRun(t, f, reeve.RunOptions{})
	if s := wantKind(t, run, "triggered", reeve.TriggerFailed); !strings.Contains(s.Message, "trigger bug") {
		t.Errorf("trigger panic: %s", s.Message)
	}
	if s := wantKind(t, run, "keyed", reeve.Failed); !strings.Contains(s.Message, "key bug") {
		t.Errorf("cache key panic: %s", s.Message)
	}
}

// What a run accepts, save accepts too: the spec's rules apply at validation.
func TestRunAppliesTheSpecRules(t *testing.T) {
	t.Parallel()
	one := reeve.NewTask0(tn(t, "one"), func(context.Context) (int, error) { return 1, nil })
	for name, build := range map[string]func() *reeve.Flow{
		"bad flow name": func() *reeve.Flow { f := reeve.NewFlow("my flow/1"); one.Bind(f); return f },
		"bad secret":    func() *reeve.Flow { f := reeve.NewFlow("s", reeve.Secrets("api-token")); one.Bind(f); return f },
		"bad cron":      func() *reeve.Flow { f := reeve.NewFlow("c", reeve.Schedule("every day", "")); one.Bind(f); return f },
		"negative retries": func() *reeve.Flow {
			f := reeve.NewFlow("r")
			one.Bind(f, reeve.Retries(-1, 0))
			return f
		},
	} {
		_, err := build().Run(t.Context(), reeve.RunOptions{})
		if err == nil {
			t.Errorf("%s: the run was accepted", name)
		}
	}
}
