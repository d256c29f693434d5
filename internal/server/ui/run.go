package ui

import (
	"cmp"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/state"
)

// The run page: /ui/runs/{id} with its tabs, and the actions on a run.

type runData struct {
	Run      api.FlowRun
	Flow     string
	Agent    string
	Params   []param
	Tasks    []api.TaskRun
	History  []state.State
	Duration string
	Tab      string
	CanAct   bool // the user's role may act on runs: cancel, retry, run again
	Finished bool
	Logs     *logsData
	// The graph, timeline and tasks tabs (graph.go, timeline.go).
	Graph    template.HTML
	Timeline *timelineData
	TaskRows []taskRow
	Since    int64  // the live stream's task cursor at render (see liveSince)
	CanRetry bool   // CanAct, and the run finished unsuccessfully: it may be retried from failed
	EditURL  string // the flow's run form, filled with this run's parameters
}

// TaskURL is the page of one of the run's task runs.
func (d *runData) TaskURL(key string) string { return taskRunURL(d.Run.ID, key) }

type param struct{ Name, Value string }

func (u *UI) runPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	return u.showRun(r, s, v, r.PathValue("id"), r.URL.Query())
}

func (u *UI) showRun(r *http.Request, s *session, v *view, id string, q url.Values) (string, error) {
	ctx := r.Context()
	det, err := s.api.FlowRun(ctx, id)
	if err != nil {
		return "", err
	}
	run := det.FlowRun
	d := runData{Run: run, Tasks: sortTasks(det.TaskRuns), History: det.History, Tab: q.Get("tab"), Finished: run.State.Kind.Finished()}
	switch d.Tab {
	case "", "tasks":
		d.Tab = "tasks"
	case "graph", "timeline", "logs", "details":
	default:
		return "", errs.Errorf(errs.CodeInvalid, "tab %q is not graph, timeline, tasks, logs or details", d.Tab)
	}
	v.Title = "Run " + run.ID
	v.Data = &d
	d.Flow = run.FlowID
	if fd, err := s.api.Flow(ctx, run.FlowID); err == nil {
		d.Flow = fd.Flow.Name
	}
	if run.AgentID != "" {
		d.Agent = run.AgentID
		if agents, err := s.api.Agents(ctx); err == nil {
			for _, a := range agents {
				if a.ID == run.AgentID {
					d.Agent = a.Name
				}
			}
		}
	}
	if len(run.Params) > 0 {
		var m map[string]json.RawMessage
		if json.Unmarshal(run.Params, &m) == nil {
			for k, raw := range m {
				d.Params = append(d.Params, param{k, string(raw)})
			}
			slices.SortFunc(d.Params, func(a, b param) int { return strings.Compare(a.Name, b.Name) })
		}
	}
	d.Duration = runDuration(run, det.History, time.Now())
	d.CanAct = canWrite(ctx, s)
	d.CanRetry = d.CanAct && d.Finished && !run.State.Kind.Successful()
	d.EditURL = "/ui/flows/" + url.PathEscape(run.FlowID) + "?" + url.Values{"from": {run.ID}}.Encode() + "#run"
	if err := u.runTaskTabs(r.Context(), s, &d, det); err != nil {
		return "", err
	}
	if d.Tab == "logs" {
		ld, err := readLogs(r, s, id, q, det.TaskRuns)
		if err != nil {
			return "", err
		}
		d.Logs = ld
	}
	return "run", nil
}

// cancelRun cancels a run; the API's refusal (a role that may not, a run
// already finished) is shown on the run's page.
func (u *UI) cancelRun(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	id := r.PathValue("id")
	if _, err := s.api.CancelFlowRun(r.Context(), id); err != nil {
		return u.runActionRefused(r, s, v, id, err, "cancel", "The run was not cancelled")
	}
	http.Redirect(w, r, "/ui/runs/"+url.PathEscape(id), http.StatusSeeOther)
	return "", nil
}

// retryRun restarts a finished, unsuccessful run from its failures: the
// API schedules it again, and its next runner runs only the failed and
// unfinished task runs, reusing the results of the finished ones.
func (u *UI) retryRun(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	id := r.PathValue("id")
	if _, err := s.api.RestartFlowRun(r.Context(), id); err != nil {
		return u.runActionRefused(r, s, v, id, err, "retry", "The run was not retried")
	}
	http.Redirect(w, r, "/ui/runs/"+url.PathEscape(id), http.StatusSeeOther)
	return "", nil
}

// rerunRun creates a new run of the same flow version with the same
// parameters (and so the same labels) and goes to the new run's page.
func (u *UI) rerunRun(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	ctx := r.Context()
	id := r.PathValue("id")
	det, err := s.api.FlowRun(ctx, id)
	if err != nil {
		return "", err
	}
	run := det.FlowRun
	out, err := s.api.CreateFlowRun(ctx, api.CreateFlowRun{FlowID: run.FlowID, FlowVersionID: run.FlowVersionID, Params: run.Params})
	if err != nil {
		return u.runActionRefused(r, s, v, id, err, "run again", "No new run was created")
	}
	http.Redirect(w, r, "/ui/runs/"+url.PathEscape(out.FlowRun.ID), http.StatusSeeOther)
	return "", nil
}

// runActionRefused shows the API's refusal of an action on a run (a role
// that may not, a run in the wrong state) on the run's page, with the
// refusal's status; any other error is the page's error.
func (u *UI) runActionRefused(r *http.Request, s *session, v *view, id string, err error, verb, notDone string) (string, error) {
	code := errs.CodeOf(err)
	if code != errs.CodeForbidden && code != errs.CodeConflict && code != errs.CodeInvalid {
		return "", err
	}
	name, perr := u.showRun(r, s, v, id, url.Values{})
	if perr != nil {
		return "", err
	}
	v.Status = statusOf(err)
	if code == errs.CodeForbidden {
		v.Error = "You may not " + verb + " this run: " + err.Error()
	} else {
		v.Error = notDone + ": " + err.Error()
	}
	return name, nil
}

// sortTasks returns the task runs with mapped children in index order
// after their parent (the API orders keys as text: "t[10]" before "t[2]").
func sortTasks(trs []api.TaskRun) []api.TaskRun {
	out := slices.Clone(trs)
	slices.SortStableFunc(out, func(a, b api.TaskRun) int {
		ab, bb := taskBase(a.Key), taskBase(b.Key)
		return cmp.Or(cmp.Compare(ab, bb), cmp.Compare(len(a.Key), len(b.Key)) /* the parent first */, cmp.Compare(a.MapIndex, b.MapIndex))
	})
	return out
}

// taskBase is a task run's key without its map index: "t" for "t[3]".
func taskBase(key string) string {
	base, _, _ := strings.Cut(key, "[")
	return base
}
