package storetest

import (
	"testing"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

func testLookups(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("GetFlowByID", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		fx := seed(t, s, "byid")
		want, err := s.GetFlow(ctx, fx.project.Name, "byid-flow")
		requireNoError(t, err, "GetFlow")
		got, err := s.GetFlowByID(ctx, fx.version.FlowID)
		requireNoError(t, err, "GetFlowByID")
		if got.ID != want.ID || got.Name != want.Name || got.ProjectID != want.ProjectID || got.LatestVersion != want.LatestVersion {
			t.Errorf("GetFlowByID = %+v, want %+v", got, want)
		}
		_, err = s.GetFlowByID(ctx, "no-such-flow")
		requireErrorIs(t, err, reeve.ErrNotFound, "no-such-flow")
	})

	t.Run("CountFlowRuns", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		counts, err := s.CountFlowRuns(ctx)
		requireNoError(t, err, "CountFlowRuns")
		if len(counts) != 0 {
			t.Errorf("an empty store counts %v, want nothing", counts)
		}
		fx := seed(t, s, "count")
		createRun(t, s, store.FlowRun{FlowVersionID: fx.version.ID})
		_, err = s.SetFlowRunState(ctx, fx.run.ID, fx.run.Version, state.State{Kind: state.Running})
		requireNoError(t, err, "SetFlowRunState")
		counts, err = s.CountFlowRuns(ctx)
		requireNoError(t, err, "CountFlowRuns")
		if len(counts) != 2 || counts[state.Scheduled] != 1 || counts[state.Running] != 1 {
			t.Errorf("CountFlowRuns = %v, want 1 Scheduled and 1 Running", counts)
		}
	})
}
