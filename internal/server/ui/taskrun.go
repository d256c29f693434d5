package ui

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/spec"
	"github.com/reevehq/reeve/internal/state"
)

// The task-run page: /ui/runs/{id}/tasks/{key}, where key is a task run's
// key, path-escaped ("transform%5B3%5D" for "transform[3]"). It shows the
// task run's state, every attempt with its error, what its inputs are and
// where its result is, its upstream and downstream tasks, and, for the
// parent of a mapped task, its children a page at a time.

// taskChildrenPage is how many mapped children the page lists at once.
const taskChildrenPage = 100

// maxConstText is how much of a constant input's JSON the page shows.
const maxConstText = 200

// taskRunURL is the page of a flow run's task run.
func taskRunURL(runID, key string) string {
	return "/ui/runs/" + url.PathEscape(runID) + "/tasks/" + url.PathEscape(key)
}

type taskRunData struct {
	Run     api.FlowRun
	Flow    string // the flow's name
	RunURL  string
	Key     string
	Base    string // the spec's task ID: the key without its map index
	Name    string // the registered task name
	Index   int    // the map index of a mapped child; -1 otherwise
	Started bool   // a task run exists (else the task has not started yet)
	TaskRun api.TaskRun
	// Attempts are the task run's states grouped by attempt, oldest first.
	Attempts []taskAttempt
	Inputs   []taskInput
	Upstream []taskLink
	Down     []taskLink
	Options  []param
	Result   string // where the result is stored ("STORE#KEY"), or ""
	Serial   string // its serializer
	LogsURL  string
	// Parent, Prev and Next link a mapped child to its parent and siblings.
	Parent, Prev, Next *taskLink
	// Children is the parent of a mapped task's children page.
	Children  *taskChildren
	SpecError string
}

// taskAttempt is one attempt of a task run: the states from its Running
// state (or the task run's first state) to the next Running state.
type taskAttempt struct {
	N int // the attempt number; 0 for states before the first attempt ran
	// Task is the engine's attempt number when it differs from N: a run
	// retried from failed numbers a task's attempts from 1 again.
	Task     int
	States   []state.State
	Errors   []string // the messages of its failing states
	Duration string
	Label    string // the heading
}

// taskInput is one positional input of the task, from the spec.
type taskInput struct {
	Pos   int
	Kind  string // task, param or const
	Name  string // the upstream task ID or the parameter name
	Value string // a parameter's value in this run, or a constant
	Each  bool   // the task is mapped over this input
	Link  *taskLink
}

// taskLink is a link to another task run of the same flow run.
type taskLink struct {
	Key   string
	URL   string
	State *state.Kind // nil: not started
}

// taskChildren is a page of a mapped task's children.
type taskChildren struct {
	Total   int // every child
	Counts  []taskCount
	State   string // the state filter, "" for every child
	Matched int    // children that match the filter
	Rows    []api.TaskRun
	Page    int
	Pages   int
	Prev    string // URLs; empty when there is no such page
	Next    string
	AllURL  string
	BaseURL string
}

// taskCount is how many children are in one state, with the URL that
// lists them.
type taskCount struct {
	Kind state.Kind
	N    int
	URL  string
}

// Mapped reports whether the page is a mapped task's parent.
func (d *taskRunData) Mapped() bool { return d.Children != nil }

// URL is the page of another task run of this flow run.
func (d *taskRunData) URL(key string) string { return taskRunURL(d.Run.ID, key) }

func (u *UI) taskRunPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	ctx := r.Context()
	id, key := r.PathValue("id"), r.PathValue("key")
	det, err := s.api.FlowRun(ctx, id)
	if err != nil {
		return "", err
	}
	run := det.FlowRun
	d := &taskRunData{Run: run, Flow: run.FlowID, RunURL: "/ui/runs/" + url.PathEscape(run.ID), Key: key, Base: taskBase(key), Index: -1}
	if fd, err := s.api.Flow(ctx, run.FlowID); err == nil {
		d.Flow = fd.Flow.Name
	}
	byKey := make(map[string]api.TaskRun, len(det.TaskRuns))
	var children []api.TaskRun
	for _, tr := range det.TaskRuns {
		byKey[tr.Key] = tr
		if tr.Key != key && taskBase(tr.Key) == key && strings.HasPrefix(tr.Key, key+"[") {
			children = append(children, tr)
		}
	}
	var sp *spec.Spec
	if fv, err := s.api.FlowVersion(ctx, run.FlowVersionID); err != nil {
		d.SpecError = "The flow version's spec could not be read: " + err.Error()
	} else if sp, err = spec.Decode(fv.Spec); err != nil {
		d.SpecError = "The flow version's spec could not be read: " + err.Error()
		sp = nil
	}
	var task *spec.Task
	if sp != nil {
		for i := range sp.Tasks {
			if sp.Tasks[i].ID == d.Base {
				task = &sp.Tasks[i]
			}
		}
	}
	tr, started := byKey[key]
	index, isChild := mapIndex(key)
	switch {
	case started, len(children) > 0:
	case task != nil && key == d.Base:
		// In the spec, not started yet: the graph links to it too. A key
		// that only starts like a task's ID ("b[x]", "b[") is not one.
	default:
		v.Title = "Task not found"
		return "", errs.Errorf(errs.CodeNotFound, "flow run %s has no task run %q: go back to the run's tasks tab to see the ones it has", run.ID, key)
	}
	v.Title = key + " · run " + run.ID
	v.Data = d
	d.Started, d.TaskRun = started, tr
	d.Name = d.Base
	if started {
		d.Name = cmp.Or(tr.Task, d.Base)
	}
	if task != nil {
		d.Name = task.Task
	}
	if isChild {
		d.Index = index
	}
	q := url.Values{"tab": {"logs"}, "task": {key}}
	d.LogsURL = d.RunURL + "?" + q.Encode()
	link := func(k string) *taskLink {
		l := &taskLink{Key: k, URL: taskRunURL(run.ID, k)}
		if tr, ok := byKey[k]; ok {
			kind := tr.State.Kind
			l.State = &kind
		}
		return l
	}
	if started {
		hist, err := s.api.History(ctx, run.ID, tr.ID)
		if err != nil {
			return "", err
		}
		d.Attempts = groupAttempts(hist)
		if res := tr.State.Result; res.Persisted() {
			d.Result, d.Serial = res.Location(), cmp.Or(res.Serializer, "json")
		}
	}
	if isChild {
		d.Parent = link(d.Base)
		if index > 0 {
			d.Prev = link(fmt.Sprintf("%s[%d]", d.Base, index-1))
		}
		if next := fmt.Sprintf("%s[%d]", d.Base, index+1); byKey[next].ID != "" {
			d.Next = link(next)
		}
	}
	if task != nil {
		d.Inputs = taskInputs(task, run.Params, link)
		d.Options = taskOptions(task.Options)
		seen := map[string]bool{}
		for _, in := range task.Inputs {
			if in.Kind == spec.InputTask && !seen[in.Task] {
				seen[in.Task] = true
				d.Upstream = append(d.Upstream, *link(in.Task))
			}
		}
		for _, a := range task.After {
			if !seen[a] {
				seen[a] = true
				d.Upstream = append(d.Upstream, *link(a))
			}
		}
		for _, t := range sp.Tasks {
			if dependsOn(t, task.ID) {
				d.Down = append(d.Down, *link(t.ID))
			}
		}
	}
	if len(children) > 0 || (task != nil && task.Mapped && !isChild) {
		c, err := childrenPage(d, children, r.URL.Query())
		if err != nil {
			return "", err
		}
		d.Children = c
	}
	return "taskrun", nil
}

// mapIndex returns the map index of a mapped child's key ("t[3]" → 3).
func mapIndex(key string) (int, bool) {
	base, rest, ok := strings.Cut(key, "[")
	if !ok || base == "" || !strings.HasSuffix(rest, "]") {
		return -1, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, "]"))
	if err != nil || n < 0 {
		return -1, false
	}
	return n, true
}

// dependsOn reports whether task t takes an input from, or runs after,
// the task with ID up.
func dependsOn(t spec.Task, up string) bool {
	for _, in := range t.Inputs {
		if in.Kind == spec.InputTask && in.Task == up {
			return true
		}
	}
	return slices.Contains(t.After, up)
}

// groupAttempts splits a task run's states into attempts: each Running
// state starts one, numbered from 1. States before the first Running
// state (Pending, Scheduled) form attempt 0, and are the only group of a
// task run that never ran (a cached or skipped task).
func groupAttempts(hist []state.State) []taskAttempt {
	var out []taskAttempt
	n := 0
	for _, st := range hist {
		if st.Kind == state.Running || len(out) == 0 {
			a := taskAttempt{}
			if st.Kind == state.Running {
				n++
				a.N = n
				if st.Attempt != 0 && st.Attempt != n {
					a.Task = st.Attempt
				}
			}
			out = append(out, a)
		}
		a := &out[len(out)-1]
		a.States = append(a.States, st)
		if st.Message != "" && (st.Kind.Failure() || st.Kind == state.Retrying || st.Kind == state.Cancelled) {
			a.Errors = append(a.Errors, st.Message)
		}
	}
	for i := range out {
		a := &out[i]
		switch last := a.States[len(a.States)-1].Kind; {
		case a.N > 0:
			a.Label = "Attempt " + strconv.Itoa(a.N)
		case i+1 < len(out):
			a.Label = "Before the first attempt"
		case last.Finished():
			a.Label = "Finished without running"
		default:
			a.Label = "Waiting to run"
		}
		if a.N == 0 || len(a.States) < 2 {
			continue
		}
		a.Duration = duration(a.States[len(a.States)-1].Time.Sub(a.States[0].Time))
	}
	return out
}

// taskInputs describes a task's inputs: an upstream task's result (linked),
// a parameter with its value in this run, or a constant.
func taskInputs(t *spec.Task, params json.RawMessage, link func(string) *taskLink) []taskInput {
	var pm map[string]json.RawMessage
	if len(params) > 0 {
		_ = json.Unmarshal(params, &pm)
	}
	var out []taskInput
	for i, in := range t.Inputs {
		ti := taskInput{Pos: i + 1, Kind: in.Kind, Each: in.Each}
		switch in.Kind {
		case spec.InputTask:
			ti.Name, ti.Link = in.Task, link(in.Task)
		case spec.InputParam:
			ti.Name = in.Param
			if raw, ok := pm[in.Param]; ok {
				ti.Value = compactJSON(raw)
			} else {
				ti.Value = "(the default)"
			}
		case spec.InputConst:
			ti.Value = compactJSON(in.Value)
		}
		out = append(out, ti)
	}
	return out
}

// compactJSON is JSON text on one line, cut to maxConstText.
func compactJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	s := string(raw)
	if json.Compact(&buf, raw) == nil {
		s = buf.String()
	}
	if len(s) > maxConstText {
		s = strings.ToValidUTF8(s[:maxConstText], "") + "…"
	}
	return s
}

// taskOptions lists a task's options that are set.
func taskOptions(o spec.Options) []param {
	var out []param
	add := func(name, value string) { out = append(out, param{name, value}) }
	if o.Retries > 0 {
		add("retries", fmt.Sprintf("%d, delay %s", o.Retries, o.RetryDelay))
	}
	if o.Timeout > 0 {
		add("timeout", o.Timeout.String())
	}
	if o.Trigger != "" {
		add("trigger", o.Trigger)
	}
	if o.CacheFor > 0 {
		add("cache for", o.CacheFor.String())
	}
	if o.Checkpoint {
		add("checkpoint", "yes")
	}
	if o.NoCheckpoint {
		add("checkpoint", "never")
	}
	if o.ResultStore != "" {
		add("result store", o.ResultStore)
	}
	if len(o.Tags) > 0 {
		add("tags", strings.Join(o.Tags, ", "))
	}
	return out
}

// childrenPage is the page of a mapped task's children that the URL asks
// for: ?state=KIND keeps the children in that state, ?page=N (from 1)
// picks a page of taskChildrenPage.
func childrenPage(d *taskRunData, children []api.TaskRun, q url.Values) (*taskChildren, error) {
	slices.SortFunc(children, func(a, b api.TaskRun) int { return cmp.Compare(a.MapIndex, b.MapIndex) })
	base := taskRunURL(d.Run.ID, d.Key)
	c := &taskChildren{Total: len(children), State: q.Get("state"), Page: 1, BaseURL: base, AllURL: base + "#children"}
	var counts state.Counts
	for _, ch := range children {
		counts[ch.State.Kind]++
	}
	for _, k := range state.Kinds() {
		if counts[k] > 0 {
			c.Counts = append(c.Counts, taskCount{Kind: k, N: counts[k], URL: base + "?" + url.Values{"state": {k.String()}}.Encode() + "#children"})
		}
	}
	rows := children
	if c.State != "" {
		k, err := state.ParseKind(c.State)
		if err != nil {
			return nil, errs.Errorf(errs.CodeInvalid, "state filter: %v", err)
		}
		rows = nil
		for _, ch := range children {
			if ch.State.Kind == k {
				rows = append(rows, ch)
			}
		}
	}
	c.Matched = len(rows)
	c.Pages = max(1, (len(rows)+taskChildrenPage-1)/taskChildrenPage)
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, errs.Errorf(errs.CodeInvalid, "page %q is not a page number (1, 2, …)", p)
		}
		c.Page = n
	}
	pageURL := func(n int) string {
		pq := url.Values{}
		if c.State != "" {
			pq.Set("state", c.State)
		}
		if n > 1 {
			pq.Set("page", strconv.Itoa(n))
		}
		if len(pq) == 0 {
			return base + "#children"
		}
		return base + "?" + pq.Encode() + "#children"
	}
	if c.Page > 1 {
		c.Prev = pageURL(min(c.Page-1, c.Pages))
	}
	if c.Page < c.Pages {
		c.Next = pageURL(c.Page + 1)
	}
	from := (c.Page - 1) * taskChildrenPage
	if from < len(rows) {
		c.Rows = rows[from:min(from+taskChildrenPage, len(rows))]
	}
	return c, nil
}
