package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

func listLogs(t *testing.T, s store.Store, flowRunID, taskRunID string, after int64, limit int) []store.LogLine {
	t.Helper()
	lines, err := s.ListLogs(t.Context(), flowRunID, taskRunID, after, limit)
	requireNoError(t, err, "ListLogs(%q, %q, %d, %d)", flowRunID, taskRunID, after, limit)
	return lines
}

// requireLines fails unless got are want as stored, oldest first, with
// increasing IDs.
func requireLines(t *testing.T, what string, got, want []store.LogLine) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d lines %+v, want %d", what, len(got), got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.FlowRunID != w.FlowRunID || g.TaskRunID != w.TaskRunID || g.Level != w.Level || g.Message != w.Message {
			t.Errorf("%s[%d] = %+v, want %+v", what, i, g, w)
		}
		if w.ID != 0 && g.ID != w.ID {
			t.Errorf("%s[%d]: ID = %d, want %d", what, i, g.ID, w.ID)
		}
		if i > 0 && g.ID <= got[i-1].ID {
			t.Errorf("%s[%d]: ID %d is not after the previous line's %d", what, i, g.ID, got[i-1].ID)
		}
		requireTime(t, fmt.Sprintf("%s[%d] time", what, i), g.Time, micro(w.Time))
		requireJSON(t, fmt.Sprintf("%s[%d] attrs", what, i), g.Attrs, w.Attrs)
	}
}

func testLogs(t *testing.T, open func(t *testing.T) store.Store) {
	// logFixture is a flow run with a task run, and logs appended in two
	// calls: flow run lines and task run lines interleaved.
	type logFixture struct {
		s     store.Store
		f     fixture
		task  store.TaskRun
		lines []store.LogLine // as appended
	}
	setup := func(t *testing.T) logFixture {
		t.Helper()
		s := open(t)
		f := seed(t, s, "etl")
		task := writeTasks(t, s, f.run.ID, store.TaskRunWrite{Key: "extract", Task: "extract", State: pending(0)})[0]
		line := func(i int, taskRunID, level string) store.LogLine {
			return store.LogLine{
				FlowRunID: f.run.ID, TaskRunID: taskRunID, Time: at(time.Duration(i) * time.Millisecond),
				Level: level, Message: fmt.Sprintf("line %d", i),
				Attrs: json.RawMessage(fmt.Sprintf(`{"i": %d, "task": %q}`, i, taskRunID)),
			}
		}
		first := []store.LogLine{
			line(0, "", "INFO"), line(1, task.ID, "DEBUG"), line(2, task.ID, "INFO"), line(3, "", "WARN"),
		}
		second := []store.LogLine{line(4, task.ID, "ERROR"), line(5, "", "INFO"), line(6, "", "INFO")}
		second[2].Attrs = nil
		requireNoError(t, s.AppendLogs(t.Context(), first), "AppendLogs")
		requireNoError(t, s.AppendLogs(t.Context(), second), "AppendLogs")
		return logFixture{s: s, f: f, task: task, lines: append(first, second...)}
	}

	t.Run("AppendAndList", func(t *testing.T) {
		t.Parallel()
		x := setup(t)
		requireLines(t, "ListLogs", listLogs(t, x.s, x.f.run.ID, "", 0, 100), x.lines)
	})

	t.Run("After", func(t *testing.T) {
		t.Parallel()
		x := setup(t)
		all := listLogs(t, x.s, x.f.run.ID, "", 0, 100)
		requireLines(t, "after the third", listLogs(t, x.s, x.f.run.ID, "", all[2].ID, 100), all[3:])
		requireLines(t, "after the last", listLogs(t, x.s, x.f.run.ID, "", all[len(all)-1].ID, 100), nil)
	})

	t.Run("LimitPages", func(t *testing.T) {
		t.Parallel()
		x := setup(t)
		all := listLogs(t, x.s, x.f.run.ID, "", 0, 100)
		var (
			got   []store.LogLine
			after int64
		)
		for page := 0; ; page++ {
			if page > len(all) {
				t.Fatalf("paging logs did not end")
			}
			lines := listLogs(t, x.s, x.f.run.ID, "", after, 2)
			if len(lines) > 2 {
				t.Fatalf("limit 2 returned %d lines", len(lines))
			}
			if len(lines) == 0 {
				break
			}
			got = append(got, lines...)
			after = lines[len(lines)-1].ID
		}
		requireLines(t, "pages of 2", got, all)
	})

	t.Run("TaskRun", func(t *testing.T) {
		t.Parallel()
		x := setup(t)
		var want []store.LogLine
		for _, l := range x.lines {
			if l.TaskRunID == x.task.ID {
				want = append(want, l)
			}
		}
		got := listLogs(t, x.s, x.f.run.ID, x.task.ID, 0, 100)
		requireLines(t, "task run lines", got, want)
		requireLines(t, "task run lines after the first", listLogs(t, x.s, x.f.run.ID, x.task.ID, got[0].ID, 1), want[1:2])
	})

	t.Run("OtherFlowRun", func(t *testing.T) {
		t.Parallel()
		x := setup(t)
		other := createRun(t, x.s, store.FlowRun{FlowVersionID: x.f.version.ID})
		requireLines(t, "lines of a run without logs", listLogs(t, x.s, other.ID, "", 0, 100), nil)
		l := store.LogLine{FlowRunID: other.ID, Time: at(0), Level: "INFO", Message: "other"}
		requireNoError(t, x.s.AppendLogs(t.Context(), []store.LogLine{l}), "AppendLogs")
		requireLines(t, "other run", listLogs(t, x.s, other.ID, "", 0, 100), []store.LogLine{l})
		requireLines(t, "first run", listLogs(t, x.s, x.f.run.ID, "", 0, 100), x.lines)
	})

	t.Run("AppendNothing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		requireNoError(t, s.AppendLogs(t.Context(), nil), "AppendLogs(nil)")
	})

	t.Run("UnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		x := setup(t)
		const runID, taskID = "0190c7a4-0000-7000-8000-000000000009", "0190c7a4-0000-7000-8000-00000000000a"
		err := x.s.AppendLogs(t.Context(), []store.LogLine{{FlowRunID: runID, Time: at(0), Level: "INFO", Message: "x"}})
		requireErrorIs(t, err, reeve.ErrNotFound, runID)
		err = x.s.AppendLogs(t.Context(), []store.LogLine{
			{FlowRunID: x.f.run.ID, TaskRunID: taskID, Time: at(0), Level: "INFO", Message: "x"},
		})
		requireErrorIs(t, err, reeve.ErrNotFound, taskID)
		_, err = x.s.ListLogs(t.Context(), runID, "", 0, 10)
		requireErrorIs(t, err, reeve.ErrNotFound, runID)
		_, err = x.s.ListLogs(t.Context(), x.f.run.ID, taskID, 0, 10)
		requireErrorIs(t, err, reeve.ErrNotFound, taskID)
	})
}
