package reeve

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/reevehq/reeve/internal/engine"
)

// TestNoCheckpoint: a task marked NoCheckpoint keeps its mark through a
// spec, and a server run, which persists every other result, does not
// persist its result.
func TestNoCheckpoint(t *testing.T) {
	t.Parallel()
	secret := NewTask0("nockpt.secret", func(ctx context.Context) (string, error) { return "hunter2", nil }, NoCheckpoint())
	public := NewTask1("nockpt.public", func(ctx context.Context, s string) (int, error) { return len(s), nil })
	f := NewFlow("nockpt")
	public.Bind(f, secret.Bind(f))
	var buf bytes.Buffer
	if err := f.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"no_checkpoint": true`) {
		t.Fatalf("the spec lacks no_checkpoint:\n%s", buf.String())
	}
	loaded, err := LoadFlow(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for name, fl := range map[string]*Flow{"built": f, "loaded": loaded} {
		run, err := engine.Execute(t.Context(), &fl.g, engine.Config{CheckpointAll: true, ResultStore: "mem://nockpt-" + name})
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range run.Tasks {
			n := fl.g.Nodes[tr.Node]
			persisted := tr.State.Result != nil && tr.State.Result.Persisted()
			if want := n.ID != "nockpt.secret"; persisted != want {
				t.Errorf("%s flow: task %s persisted=%v, want %v", name, n.ID, persisted, want)
			}
		}
	}
}
