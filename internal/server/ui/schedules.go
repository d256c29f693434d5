package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/errs"
)

// The schedules page: /ui/schedules.

type schedulesData struct {
	Projects  []api.Project
	Project   string
	Schedules []scheduleRow
	CanAct    bool // the user's role may pause, resume and run (admin, developer)
}

type scheduleRow struct {
	Schedule api.Schedule
	Flow     api.Flow
	Project  string
	Every    string // an interval schedule's interval, "15m0s"
	Zone     string // the zone it fires in: its time zone, or UTC
	Next     []zonedTime
	Params   string // its parameters as JSON, "" for the defaults
}

// zonedTime is a fire time and the same time in the schedule's zone.
type zonedTime struct {
	At     time.Time
	InZone string // "2026-11-27 06:00 CET"
}

// schedulesPage lists the schedules (of a project, or of every one) with
// their flow, cron or interval, zone, next fire times and whether they are
// paused, and forms to pause, resume and run now for the roles that may.
func (u *UI) schedulesPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	q := r.URL.Query()
	switch q.Get("done") {
	case "paused":
		v.Notice = "Schedule " + q.Get("id") + " paused: its runs that had not started were deleted."
	case "resumed":
		v.Notice = "Schedule " + q.Get("id") + " resumed."
	}
	return u.showSchedules(r, s, v, q.Get("project"))
}

func (u *UI) showSchedules(r *http.Request, s *session, v *view, project string) (string, error) {
	ctx := r.Context()
	v.Title = "Schedules"
	d := &schedulesData{Project: project}
	v.Data = d
	cat, err := readCatalog(ctx, s, project)
	if err != nil {
		return "", err
	}
	d.Projects = cat.projects
	scheds, err := s.api.Schedules(ctx, "")
	if err != nil {
		return "", err
	}
	for _, sc := range scheds {
		pname := cat.projectName[sc.ProjectID]
		if project != "" && pname != project {
			continue
		}
		loc, zone := scheduleZone(sc)
		row := scheduleRow{Schedule: sc, Flow: cat.flow(ctx, s, sc.FlowID), Project: pname, Zone: zone}
		if sc.Interval != 0 {
			row.Every = time.Duration(sc.Interval).String()
		}
		if len(sc.Params) > 0 && string(sc.Params) != "null" {
			row.Params = string(sc.Params)
		}
		for _, at := range sc.NextRuns {
			row.Next = append(row.Next, zonedTime{At: at, InZone: at.In(loc).Format("2006-01-02 15:04 MST")})
		}
		d.Schedules = append(d.Schedules, row)
	}
	slices.SortStableFunc(d.Schedules, func(a, b scheduleRow) int {
		if c := strings.Compare(a.Project, b.Project); c != 0 {
			return c
		}
		return strings.Compare(a.Flow.Name, b.Flow.Name)
	})
	if len(d.Schedules) > 0 {
		d.CanAct = canWrite(ctx, s)
	}
	return "schedules", nil
}

// schedulesURL is the schedules page of project after an action.
func schedulesURL(project, done, id string) string {
	q := url.Values{}
	if project != "" {
		q.Set("project", project)
	}
	q.Set("done", done)
	q.Set("id", id)
	return "/ui/schedules?" + q.Encode()
}

// pauseSchedule pauses a schedule (the API deletes its runs that have
// not started). A refusal is the API's message page (403 for a role that
// may not).
func (u *UI) pauseSchedule(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	id := r.PathValue("id")
	if _, err := s.api.PauseSchedule(r.Context(), id); err != nil {
		return "", err
	}
	http.Redirect(w, r, schedulesURL(r.PostForm.Get("project"), "paused", id), http.StatusSeeOther)
	return "", nil
}

// resumeSchedule resumes a paused schedule.
func (u *UI) resumeSchedule(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	id := r.PathValue("id")
	if _, err := s.api.ResumeSchedule(r.Context(), id); err != nil {
		return "", err
	}
	http.Redirect(w, r, schedulesURL(r.PostForm.Get("project"), "resumed", id), http.StatusSeeOther)
	return "", nil
}

// runSchedule runs a schedule's flow now, with the schedule's parameters,
// and opens the new run's page.
func (u *UI) runSchedule(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	ctx := r.Context()
	sc, err := s.api.Schedule(ctx, r.PathValue("id"))
	if err != nil {
		return "", err
	}
	req := api.CreateFlowRun{FlowID: sc.FlowID}
	if len(sc.Params) > 0 && string(sc.Params) != "null" {
		req.Params = sc.Params
	}
	out, err := s.api.CreateFlowRun(ctx, req)
	if err != nil {
		if errs.CodeOf(err) == errs.CodeForbidden {
			v.Title = "Not allowed"
		}
		return "", err
	}
	http.Redirect(w, r, "/ui/runs/"+url.PathEscape(out.FlowRun.ID), http.StatusSeeOther)
	return "", nil
}
