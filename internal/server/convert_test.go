package server

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// TestAPIFlowRunCopiesEveryField checks that apiFlowRun copies every field
// of a store.FlowRun to the api.FlowRun field of the same name: a field
// added to both and not to apiFlowRun fails here.
func TestAPIFlowRunCopiesEveryField(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in := store.FlowRun{
		ID: "r", ProjectID: "p", FlowID: "f", FlowVersionID: "v", Name: "n", Params: json.RawMessage(`{"a":1}`),
		IdempotencyKey: "k", Labels: []string{"l"}, ScheduleID: "s", AgentID: "g", ScheduledAt: now,
		State: state.State{Kind: state.Running, Time: now}, Version: 2, Attempt: 3, HeartbeatAt: now,
		Recoveries: 4, CreatedAt: now, UpdatedAt: now,
	}
	out := reflect.ValueOf(apiFlowRun(in))
	v := reflect.ValueOf(in)
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if v.Field(i).IsZero() {
			t.Errorf("store.FlowRun.%s is zero in this test: give it a value", name)
			continue
		}
		got := out.FieldByName(name)
		if !got.IsValid() {
			t.Errorf("api.FlowRun has no field %s", name)
			continue
		}
		if !reflect.DeepEqual(got.Interface(), v.Field(i).Interface()) {
			t.Errorf("apiFlowRun: %s = %v, want %v", name, got.Interface(), v.Field(i).Interface())
		}
	}
}
