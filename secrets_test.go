package reeve_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reevehq/reeve"
)

const secretValue = "s3cr3t-T0ken-9f8e7d"

func secretsFlow(t *testing.T) *reeve.Flow {
	use := reeve.NewTask0(tn(t, "use"), func(ctx context.Context) (int, error) {
		v, err := reeve.Secret(ctx, "API_TOKEN")
		if err != nil {
			return 0, err
		}
		reeve.Logger(ctx).Info("calling the API with "+v, "token", v, "auth", slog.GroupValue(slog.String("bearer", v)))
		return len(v), reeve.Fail("API refused token " + v)
	})
	undeclared := reeve.NewTask0(tn(t, "undeclared"), func(ctx context.Context) (string, error) {
		return reeve.Secret(ctx, "OTHER")
	})
	f := reeve.NewFlow("secrets", reeve.Secrets("API_TOKEN"))
	use.Bind(f, reeve.Name("use"))
	undeclared.Bind(f, reeve.Name("undeclared"))
	return f
}

func TestSecretsComeFromTheFileAndAreRedacted(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(file, []byte("# local secrets\nAPI_TOKEN="+secretValue+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := secretsFlow(t)
	var logs bytes.Buffer
	run := mustRun(t, f, reeve.RunOptions{Secrets: reeve.LocalSecrets(file), LogHandler: slog.NewTextHandler(&logs, nil)})
	s := wantKind(t, run, "use", reeve.Failed)
	if !strings.Contains(s.Message, "API refused token "+"[REDACTED]") {
		t.Errorf("state message: %q", s.Message)
	}
	tr, _ := run.TaskRun("use")
	if len(tr.Logs) != 1 {
		t.Fatalf("kept %d log records", len(tr.Logs))
	}
	for _, text := range []string{logs.String(), s.Message, run.State().Message, recordText(tr.Logs[0])} {
		if strings.Contains(text, secretValue) {
			t.Errorf("secret value leaked: %s", text)
		}
	}
	if !strings.Contains(logs.String(), "[REDACTED]") {
		t.Errorf("log output: %s", logs.String())
	}
	s = wantKind(t, run, "undeclared", reeve.Failed)
	if !strings.Contains(s.Message, `secret "OTHER" is not declared`) || !strings.Contains(s.Message, `reeve.Secrets("OTHER")`) {
		t.Errorf("undeclared secret: %s", s.Message)
	}
	var spec bytes.Buffer
	if err := f.Save(&spec); err != nil || !strings.Contains(spec.String(), `"API_TOKEN"`) {
		t.Errorf("spec does not declare the secret: %s %v", spec.String(), err)
	}
}

func recordText(r slog.Record) string {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	return b.String()
}

// Not parallel: it sets the environment.
func TestSecretsFromTheEnvironmentAndMissingSecrets(t *testing.T) {
	f := secretsFlow(t)
	run := mustRun(t, f, reeve.RunOptions{})
	s := wantKind(t, run, "use", reeve.Failed)
	if !strings.Contains(s.Message, `secret "API_TOKEN" is not set`) || !strings.Contains(s.Message, "REEVE_SECRET_API_TOKEN") {
		t.Errorf("missing secret: %s", s.Message)
	}
	t.Setenv("REEVE_SECRET_API_TOKEN", secretValue)
	run = mustRun(t, f, reeve.RunOptions{})
	if s := wantKind(t, run, "use", reeve.Failed); !strings.Contains(s.Message, "API refused token [REDACTED]") {
		t.Errorf("secret from the environment: %s", s.Message)
	}
}

func TestTaskLogsCarryRunAttributesAndStayWithTheTaskRun(t *testing.T) {
	t.Parallel()
	work := reeve.NewTask1(tn(t, "work"), func(ctx context.Context, x int) (int, error) {
		reeve.Logger(ctx).Info("working", "x", x)
		reeve.Logger(ctx).Debug("details")
		return x, nil
	})
	f := reeve.NewFlow("logs")
	work.Map(f, reeve.Each(reeve.Const(f, []int{1, 2})), reeve.Name("work"))
	var out bytes.Buffer
	run := mustRun(t, f, reeve.RunOptions{LogHandler: slog.NewJSONHandler(&out, nil)})
	tr, _ := run.TaskRun("work[1]")
	if len(tr.Logs) != 1 {
		t.Fatalf("work[1] kept %d records (debug is below the default level)", len(tr.Logs))
	}
	attrs := map[string]string{}
	tr.Logs[0].Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	want := map[string]string{"flow": "logs", "flow_run_id": run.ID(), "task": "work", "task_run_id": "work[1]", "x": "2"}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	if !strings.Contains(out.String(), `"task_run_id":"work[0]"`) || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("log handler got:\n%s", out.String())
	}
}
