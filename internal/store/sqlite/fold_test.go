package sqlite

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/reevehq/reeve/internal/store"
)

// TestTextFoldsBeyondASCII: SQLite's own lower() folds ASCII only; the
// store folds names and messages as Go does, so a search in another case
// finds letters beyond ASCII ("über" finds "Über-load").
func TestTextFoldsBeyondASCII(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	p, err := s.CreateProject(ctx, store.Project{Name: "fold"})
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := s.RegisterFlow(ctx, store.Registration{Project: p.Name, Flow: "etl", SpecHash: "h", Spec: json.RawMessage(`{"name": "etl"}`),
		Storage: store.Storage{Kind: "local", Path: "/bin/etl"}})
	if err != nil {
		t.Fatal(err)
	}
	uber, _, err := s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v.ID, Name: "Über-load"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v.ID, Name: "uber-lad"}); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"über", "ÜBER-LOAD", "Über"} {
		runs, _, err := s.ListFlowRuns(ctx, store.FlowRunFilter{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 || runs[0].ID != uber.ID {
			t.Errorf("text %q finds %d runs, want only Über-load", text, len(runs))
		}
	}
}
