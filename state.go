package reeve

import (
	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/state"
)

// State is one state of a flow run or task run: its kind, a message,
// timestamps and, where there is one, a result. It is the one state model of
// Reeve, shared by the engine, the server and the UI.
type State = state.State

// Kind is the kind of a State.
type Kind = state.Kind

// Result locates a task run's result: its in-memory value and, when
// persisted, the store and key it was written to.
type Result = state.Result

// The kinds of state; see the state package for their meaning.
const (
	Pending       = state.Pending
	Scheduled     = state.Scheduled
	Submitted     = state.Submitted
	Running       = state.Running
	Retrying      = state.Retrying
	Cancelling    = state.Cancelling
	Success       = state.Success
	Failed        = state.Failed
	TimedOut      = state.TimedOut
	TriggerFailed = state.TriggerFailed
	Skipped       = state.Skipped
	Cached        = state.Cached
	Mapped        = state.Mapped
	Cancelled     = state.Cancelled
)

// StateChange is what a state handler receives: the flow run, the task run
// (nil for a change of the flow run's own state) and the old and new states.
type StateChange = engine.Change

// Handler is a state handler: a callback on state changes, for alerts and
// cleanup. Handlers run on the engine's goroutine, one at a time; keep them
// quick. A panic in a handler is recovered and logged.
type Handler = engine.Handler

// TaskRunRef identifies a task run in a StateChange.
type TaskRunRef = engine.TaskRunRef

// Log attribute keys that Reeve puts on every task log record.
const (
	LogKeyFlow      = engine.LogKeyFlow
	LogKeyFlowRunID = engine.LogKeyFlowRunID
	LogKeyTask      = engine.LogKeyTask
	LogKeyTaskRunID = engine.LogKeyTaskRunID
)
