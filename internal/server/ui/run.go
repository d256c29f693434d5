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
	CanAct   bool // the user's role may cancel
	Finished bool
	Logs     *logsData
	// The graph, timeline and tasks tabs (graph.go, timeline.go).
	Graph    template.HTML
	Timeline *timelineData
	TaskRows []taskRow
	Since    int64 // the live stream's task cursor at render (see liveSince)
}

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
	// Only the roles that may write (admin, developer) may list secrets,
	// exactly the roles that may cancel: the API has no "who am I" route.
	if !d.Finished {
		_, err := s.api.Secrets(ctx, "")
		d.CanAct = err == nil
	}
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
			v.Error = "You may not cancel this run: " + err.Error()
		} else {
			v.Error = "The run was not cancelled: " + err.Error()
		}
		return name, nil
	}
	http.Redirect(w, r, "/ui/runs/"+url.PathEscape(id), http.StatusSeeOther)
	return "", nil
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
