package ui

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/spec"
	"github.com/reevehq/reeve/internal/state"
)

// recentFlowRuns is how many runs a flow's page lists.
const recentFlowRuns = 10

// Bounds of a flow page's history grid: its rows are the newest runs, its
// columns the newest version's tasks.
const (
	historyRuns  = 20
	historyTasks = 40
	// historyBudget bounds the task runs the grid reads: once the runs
	// read so far held this many, the older runs' rows show no cells.
	historyBudget = 20_000
)

// flowsPage lists a project's flows.
func (u *UI) flowsPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	v.Title = "Flows"
	project := r.URL.Query().Get("project")
	flows, err := s.api.Flows(r.Context(), project, "")
	if err != nil {
		return "", err
	}
	v.Data = flows
	return "flows", nil
}

type flowData struct {
	CanRun    bool // the role may create runs: the Run form is shown
	Flow      api.Flow
	Project   string // the flow's project's name
	Versions  []api.FlowVersion
	Schedules []api.Schedule
	Runs      []runRow
	RunsURL   string     // the runs list filtered by this flow
	Spec      *spec.Spec // the spec of RunVersion
	Params    []paramField
	RunName   string
	SpecError string // the run form's version's spec could not be read
	// RunVersion is the version the run form runs: the newest, or with
	// ?from=RUN the version of that run.
	RunVersion *api.FlowVersion
	From       *api.FlowRun // the run whose parameters fill the form
	History    *flowHistory
	// Graph is the newest version's graph as static SVG (no states).
	Graph template.HTML
}

// flowHistory is the flow page's grid of recent runs × tasks.
type flowHistory struct {
	Tasks   []string // the columns: the newest version's task IDs
	More    int      // tasks left out of the columns
	Rows    []historyRow
	Skipped int // rows whose task runs were not read (historyBudget)
}

type historyRow struct {
	Run     api.FlowRun
	Cells   []historyCell
	Skipped bool // its task runs were not read: the newer runs had many
}

// historyCell is a task's state in one run: a mapped task's worst child
// state with how many children are in it.
type historyCell struct {
	Kind  string // the state's name; "" when the task has not run
	Icon  string
	Class string
	Title string
	URL   string
	Count string // a mapped task's "N/TOTAL" in the worst state
}

// paramField is one parameter of the run form, with what the user typed.
type paramField struct {
	spec.Parameter
	Default string // the default as JSON text, "" when required
	Value   string // what the form holds
}

// Input says which form control a parameter's type gets.
func (p paramField) Input() string {
	switch p.Type {
	case "boolean":
		return "select"
	case "array", "object":
		return "textarea"
	case "integer", "number":
		return "number"
	}
	return "text"
}

// Placeholder shows the default in an empty field.
func (p paramField) Placeholder() string {
	if p.Required {
		return "required"
	}
	if p.Type == "string" {
		var s string
		if json.Unmarshal([]byte(p.Default), &s) == nil {
			return s
		}
	}
	return p.Default
}

func (u *UI) flowPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	d, err := u.loadFlow(r, s, v, r.PathValue("id"), r.URL.Query().Get("from"))
	if err != nil {
		return "", err
	}
	var from map[string]json.RawMessage
	if d.From != nil && len(d.From.Params) > 0 {
		_ = json.Unmarshal(d.From.Params, &from)
		v.Notice = "The form holds the parameters of run " + d.From.ID + " (version " + strconv.Itoa(d.RunVersion.Version) + "): change what you need and run."
	}
	for i := range d.Params {
		d.Params[i].Value = paramText(d.Params[i].Type, from[d.Params[i].Name])
	}
	return "flow", nil
}

// paramText is a parameter's value as the run form shows it: a string's
// text, any other value's JSON; "" for none.
func paramText(typ string, raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	if typ == "string" {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return buf.String()
	}
	return string(raw)
}

// loadFlow reads a flow's page: versions, schedules, recent runs, the
// history grid and the run form built from the newest version's
// parameters, or with from (a run's ID) from that run's version's.
func (u *UI) loadFlow(r *http.Request, s *session, v *view, id, from string) (*flowData, error) {
	ctx := r.Context()
	fd, err := s.api.Flow(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &flowData{Flow: fd.Flow, Versions: fd.Versions, Schedules: fd.Schedules, Project: fd.Flow.ProjectID, CanRun: canWrite(ctx, s)}
	if len(fd.Versions) > 0 {
		d.RunVersion = &fd.Versions[0]
	}
	if from != "" {
		det, err := s.api.FlowRun(ctx, from)
		if err != nil {
			return nil, err
		}
		if det.FlowRun.FlowID != fd.Flow.ID {
			return nil, errs.Errorf(errs.CodeInvalid, "run %s is not a run of flow %s, so its parameters cannot fill this flow's form", from, fd.Flow.Name)
		}
		d.From = &det.FlowRun
		d.RunVersion = nil
		for i := range fd.Versions {
			if fd.Versions[i].ID == det.FlowRun.FlowVersionID {
				d.RunVersion = &fd.Versions[i]
			}
		}
		if d.RunVersion == nil {
			fv, err := s.api.FlowVersion(ctx, det.FlowRun.FlowVersionID)
			if err != nil {
				return nil, err
			}
			d.RunVersion = fv
		}
	}
	v.Title = "Flow " + fd.Flow.Name
	v.Data = d
	if projects, err := s.api.Projects(ctx); err == nil {
		for _, p := range projects {
			if p.ID == fd.Flow.ProjectID {
				d.Project = p.Name
			}
		}
	}
	q := url.Values{"flow": {fd.Flow.Name}, "project": {d.Project}}
	d.RunsURL = "/ui/runs?" + q.Encode()
	page, err := s.api.FlowRuns(ctx, client.FlowRunFilter{FlowID: fd.Flow.ID, Limit: max(recentFlowRuns, historyRuns)})
	if err != nil {
		return nil, err
	}
	for _, run := range page.FlowRuns[:min(recentFlowRuns, len(page.FlowRuns))] {
		d.Runs = append(d.Runs, runRow{Run: run, Flow: fd.Flow.Name, Duration: runDuration(run, nil, time.Now())})
	}
	if len(fd.Versions) > 0 {
		// A graph that cannot be drawn (a spec this server cannot read)
		// leaves the page without one; the run form says why.
		if g, err := u.flowGraphSVG(ctx, s, fd.Versions[0].ID); err == nil {
			d.Graph = g
		}
		if newest, err := spec.Decode(fd.Versions[0].Spec); err == nil && len(page.FlowRuns) > 0 {
			h, err := readHistory(r, s, newest, page.FlowRuns[:min(historyRuns, len(page.FlowRuns))])
			if err != nil {
				return nil, err
			}
			d.History = h
		}
	}
	if d.RunVersion != nil {
		sp, err := spec.Decode(d.RunVersion.Spec)
		if err != nil {
			d.SpecError = "The version's spec could not be read, so there is no run form: " + err.Error()
		} else {
			d.Spec = sp
			for _, p := range sp.Parameters {
				f := paramField{Parameter: p}
				if !p.Required && len(p.Default) > 0 {
					var buf bytes.Buffer
					if json.Compact(&buf, p.Default) == nil {
						f.Default = buf.String()
					} else {
						f.Default = string(p.Default)
					}
				}
				d.Params = append(d.Params, f)
			}
		}
	}
	return d, nil
}

// formParams turns the run form into the parameters of a run: a field
// left empty is left out (the default applies); a field's text is read as
// its parameter's JSON type, and text that is not of that type is sent as
// a string, so the API says what is wrong with it.
func formParams(form url.Values, fields []paramField) json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, f := range fields {
		text := form.Get("p." + f.Name)
		if strings.TrimSpace(text) == "" {
			continue
		}
		var raw json.RawMessage
		switch f.Type {
		case "string":
			raw, _ = json.Marshal(text)
		default:
			t := strings.TrimSpace(text)
			if json.Valid([]byte(t)) {
				raw = json.RawMessage(t)
			} else {
				raw, _ = json.Marshal(text)
			}
		}
		out[f.Name] = raw
	}
	if len(out) == 0 {
		return nil
	}
	b, _ := json.Marshal(out)
	return b
}

// runFlow creates a run of the flow's newest version with the form's
// parameters and goes to its page; the API's refusal (a bad value, a role
// that may not) is shown on the form, which keeps what the user typed.
func (u *UI) runFlow(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	id := r.PathValue("id")
	d, err := u.loadFlow(r, s, v, id, r.PostForm.Get("from"))
	if err != nil {
		return "", err
	}
	for i := range d.Params {
		d.Params[i].Value = r.PostForm.Get("p." + d.Params[i].Name)
	}
	d.RunName = strings.TrimSpace(r.PostForm.Get("name"))
	if d.Spec == nil {
		return "", errs.Errorf(errs.CodeInvalid, "%s", cmp.Or(d.SpecError, "flow "+d.Flow.Name+" has no version to run"))
	}
	req := api.CreateFlowRun{FlowID: d.Flow.ID, FlowVersionID: d.RunVersion.ID, Name: d.RunName, Params: formParams(r.PostForm, d.Params)}
	out, err := s.api.CreateFlowRun(r.Context(), req)
	if err != nil {
		code := errs.CodeOf(err)
		if code != errs.CodeInvalid && code != errs.CodeForbidden && code != errs.CodeConflict && code != errs.CodeNotFound {
			return "", err
		}
		v.Status = statusOf(err)
		v.Error = "The run was not created: " + err.Error()
		return "flow", nil
	}
	http.Redirect(w, r, "/ui/runs/"+url.PathEscape(out.FlowRun.ID), http.StatusSeeOther)
	return "", nil
}

// readHistory builds the history grid: one row per run (newest first),
// one column per task of sp (at most historyTasks), each cell the task
// run's state, or for a mapped task its children's worst state and count.
// It reads each run's task runs once, newest first, and stops reading once
// historyBudget task runs were read: the work is bounded by the budget
// plus one run's task runs, however large the runs' maps.
func readHistory(r *http.Request, s *session, sp *spec.Spec, runs []api.FlowRun) (*flowHistory, error) {
	h := &flowHistory{}
	mapped := map[string]bool{}
	for i, t := range sp.Tasks {
		if i == historyTasks {
			h.More = len(sp.Tasks) - historyTasks
			break
		}
		h.Tasks = append(h.Tasks, t.ID)
		mapped[t.ID] = t.Mapped
	}
	read := 0
	for _, run := range runs {
		if read >= historyBudget {
			h.Rows = append(h.Rows, historyRow{Run: run, Skipped: true})
			h.Skipped++
			continue
		}
		trs, err := s.api.TaskRuns(r.Context(), run.ID)
		if err != nil {
			return nil, fmt.Errorf("the history of flow %s: %w", sp.Name, err)
		}
		read += len(trs)
		byKey := make(map[string]api.TaskRun, len(trs))
		children := map[string]*state.Counts{}
		for _, tr := range trs {
			byKey[tr.Key] = tr
			if base := taskBase(tr.Key); base != tr.Key && mapped[base] {
				c := children[base]
				if c == nil {
					c = &state.Counts{}
					children[base] = c
				}
				c[tr.State.Kind]++
			}
		}
		row := historyRow{Run: run}
		for _, task := range h.Tasks {
			cell := historyCell{URL: taskRunURL(run.ID, task), Title: task + ": not run", Icon: "·", Class: "muted"}
			tr, ok := byKey[task]
			kind := tr.State.Kind
			switch c := children[task]; {
			case c != nil:
				kind = worstKind(c)
				cell.Count = fmt.Sprintf("%d/%d", c[kind], c.Total())
				cell.Title = fmt.Sprintf("%s: %s (%s)", task, kind, c.String())
			case ok:
				cell.Title = task + ": " + kind.String()
				if m := tr.State.Message; m != "" {
					cell.Title += ": " + cut(m, 200)
				}
			default:
				row.Cells = append(row.Cells, cell)
				continue
			}
			cell.Kind, cell.Icon, cell.Class = kind.String(), cmp.Or(stateIcons[kind], "•"), stateClass(kind)
			row.Cells = append(row.Cells, cell)
		}
		h.Rows = append(h.Rows, row)
	}
	return h, nil
}

// worstKind is the kind among counts that most needs a look: failures
// first, then cancellations, work in progress, waiting, and successes.
func worstKind(c *state.Counts) state.Kind {
	order := []state.Kind{state.Failed, state.TimedOut, state.TriggerFailed, state.Cancelled, state.Cancelling,
		state.Retrying, state.Running, state.Submitted, state.Scheduled, state.Pending,
		state.Skipped, state.Cached, state.Mapped, state.Success}
	for _, k := range order {
		if c[k] > 0 {
			return k
		}
	}
	return state.Pending
}

// cut shortens s to at most n bytes, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
