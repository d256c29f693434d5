package postgres

import (
	"context"
	"errors"

	"github.com/reevehq/reeve/internal/store"
)

// HeartbeatFlowRun records a runner heartbeat; see store.Store.
func (s *Store) HeartbeatFlowRun(ctx context.Context, id string, attempt int) (store.FlowRun, error) {
	return store.FlowRun{}, errors.New("HeartbeatFlowRun: not implemented yet")
}

// RecoverFlowRun takes the lost-run path; see store.Store.
func (s *Store) RecoverFlowRun(ctx context.Context, id string, expect int64, reason string, maxRecoveries int) (store.FlowRun, error) {
	return store.FlowRun{}, errors.New("RecoverFlowRun: not implemented yet")
}
