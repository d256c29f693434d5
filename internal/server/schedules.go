package server

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/store"
)

// nextRunsShown is how many next run times a schedule shows.
const nextRunsShown = 5

// scheduleWithNext returns a schedule with its next run times.
func (s *Server) scheduleWithNext(sc store.Schedule) api.Schedule {
	out := apiSchedule(sc)
	if !sc.Paused {
		out.NextRuns, _ = s.nextTimes(sc, s.now(), nextRunsShown)
	}
	return out
}

func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	scheds, err := s.store.ListSchedules(r.Context(), r.URL.Query().Get("flow_id"))
	if err != nil {
		return nil, err
	}
	return api.Schedules{Schedules: mapSlice(scheds, s.scheduleWithNext)}, nil
}

func (s *Server) createSchedule(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	var req api.CreateSchedule
	if err := decode(r, w, api.MaxBodyBytes, &req); err != nil {
		return nil, err
	}
	ctx := r.Context()
	if req.FlowID == "" {
		return nil, invalid("flow_id is missing: name the flow to schedule")
	}
	if (req.Cron == "") == (req.Interval == 0) {
		return nil, invalid("give exactly one of cron (e.g. \"0 6 * * *\") and interval (e.g. \"15m\")")
	}
	if req.Interval < 0 || (req.Interval != 0 && time.Duration(req.Interval) < time.Second) {
		return nil, invalid("interval %s is too short: use at least 1s", time.Duration(req.Interval))
	}
	if req.Interval != 0 && req.Timezone != "" {
		return nil, invalid("timezone applies to cron schedules only: remove it")
	}
	f, err := s.store.GetFlowByID(ctx, req.FlowID)
	if err != nil {
		return nil, err
	}
	v, err := s.newestVersion(ctx, f)
	if err != nil {
		return nil, err
	}
	// The schedule's parameters must make a valid run of the flow.
	if _, err := resolveParams(v, req.Params); err != nil {
		return nil, invalid("the schedule's runs could not start: %v", err)
	}
	params := req.Params
	if string(params) == "null" {
		params = nil
	}
	anchor := req.Anchor
	if req.Interval != 0 && anchor.IsZero() {
		anchor = s.now()
	}
	sc := store.Schedule{
		FlowID: f.ID, Cron: req.Cron, Timezone: req.Timezone, Interval: time.Duration(req.Interval),
		Anchor: anchor, Params: json.RawMessage(params), CreatedAt: s.now(),
	}
	// A schedule that never fires (0 0 30 2 *) is a mistake: say so now.
	if next, err := s.nextTimes(sc, s.now(), 1); err == nil && len(next) == 0 {
		return nil, invalid("cron %q never fires after now: check the day and month fields", req.Cron)
	}
	sc, err = s.store.CreateSchedule(ctx, sc)
	if err != nil {
		return nil, err
	}
	s.kick()
	return s.scheduleWithNext(sc), nil
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	sc, err := s.store.GetSchedule(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return s.scheduleWithNext(sc), nil
}

func (s *Server) pauseSchedule(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	sc, n, err := s.store.SetSchedulePaused(r.Context(), r.PathValue("id"), true)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(r.Context(), "schedule paused", "schedule", sc.ID, "deleted_runs", n)
	return s.scheduleWithNext(sc), nil
}

func (s *Server) resumeSchedule(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	sc, _, err := s.store.SetSchedulePaused(r.Context(), r.PathValue("id"), false)
	if err != nil {
		return nil, err
	}
	s.kick()
	return s.scheduleWithNext(sc), nil
}

func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	return nil, s.store.DeleteSchedule(r.Context(), r.PathValue("id"))
}
