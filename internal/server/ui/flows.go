package ui

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/spec"
)

// recentFlowRuns is how many runs a flow's page shows.
const recentFlowRuns = 10

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
	Flow      api.Flow
	Project   string // the flow's project's name
	Versions  []api.FlowVersion
	Schedules []api.Schedule
	Runs      []runRow
	RunsURL   string // the runs list filtered by this flow
	Spec      *spec.Spec
	Params    []paramField
	RunName   string
	SpecError string // the latest version's spec could not be read
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
	d, err := u.loadFlow(r, s, v, r.PathValue("id"))
	if err != nil {
		return "", err
	}
	for i := range d.Params {
		d.Params[i].Value = ""
	}
	return "flow", nil
}

// loadFlow reads a flow's page: versions, schedules, recent runs and the
// run form built from the newest version's parameters.
func (u *UI) loadFlow(r *http.Request, s *session, v *view, id string) (*flowData, error) {
	ctx := r.Context()
	fd, err := s.api.Flow(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &flowData{Flow: fd.Flow, Versions: fd.Versions, Schedules: fd.Schedules, Project: fd.Flow.ProjectID}
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
	page, err := s.api.FlowRuns(ctx, client.FlowRunFilter{FlowID: fd.Flow.ID, Limit: recentFlowRuns})
	if err != nil {
		return nil, err
	}
	for _, run := range page.FlowRuns {
		d.Runs = append(d.Runs, runRow{Run: run, Flow: fd.Flow.Name, Duration: runDuration(run, nil, time.Now())})
	}
	if len(fd.Versions) > 0 {
		sp, err := spec.Decode(fd.Versions[0].Spec)
		if err != nil {
			d.SpecError = "The newest version's spec could not be read, so there is no run form: " + err.Error()
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
	d, err := u.loadFlow(r, s, v, id)
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
	req := api.CreateFlowRun{FlowID: d.Flow.ID, FlowVersionID: d.Versions[0].ID, Name: d.RunName, Params: formParams(r.PostForm, d.Params)}
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
