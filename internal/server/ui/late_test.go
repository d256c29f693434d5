package ui_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
)

// lateFutureRuns is more future runs than the agents page reads of the
// Scheduled runs (maxStrandedScan, 500).
const lateFutureRuns = 510

// TestLateBehindFutureRuns: schedules create their runs ahead of time, so
// the newest Scheduled runs are future ones; an overdue run created before
// more of them than the agents page reads is still listed as waiting.
func TestLateBehindFutureRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.flow("arm", `"labels":["arm64"]`)
	overdue, err := e.api.CreateFlowRun(ctx, api.CreateFlowRun{Flow: "arm", ScheduledAt: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	future := make(map[string]bool)
	for i := range lateFutureRuns {
		out, err := e.api.CreateFlowRun(ctx, api.CreateFlowRun{Flow: "arm", ScheduledAt: time.Now().Add(time.Duration(i+1) * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		future[out.FlowRun.ID] = true
	}

	u := e.user()
	u.signIn(e.token("developer"))
	for _, path := range []string{"/ui/agents", "/ui/agents/live"} {
		p := u.mustGet(path)
		st := regexp.MustCompile(`(?s)<tbody id="stranded-body">.*?</tbody>`).FindString(p.body)
		if !strings.Contains(st, `data-run="`+overdue.FlowRun.ID+`"`) {
			t.Errorf("%s: the waiting runs do not list the overdue run %s:\n%s", path, overdue.FlowRun.ID, st)
		}
		for _, id := range regexp.MustCompile(`data-run="([^"]+)"`).FindAllStringSubmatch(st, -1) {
			if future[id[1]] {
				t.Errorf("%s: the waiting runs list %s, a run not due yet", path, id[1])
			}
		}
	}
}
