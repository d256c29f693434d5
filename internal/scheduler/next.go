package scheduler

import (
	"fmt"
	"math"
	"time"

	"github.com/adhocore/gronx"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

// Next returns the next n fire times of sc strictly after after, oldest
// first, in the schedule's time zone. It returns fewer than n, or none,
// when a cron expression fires no more: its year field is past, or it
// never fires at all, like "0 0 30 2 *" (code that accepts schedules may
// want to refuse one for which Next gives no time). A schedule that is not
// valid is an error matching reeve.ErrInvalid.
//
// A cron schedule fires at the wall-clock times its expression matches in
// its time zone (Timezone, an IANA name; "" is UTC). Across daylight-saving
// changes each matching wall-clock time fires once, at the first instant
// the zone's clock reads that time or later:
//
//   - When the clock jumps forward, a time it skips (02:30 on a night the
//     clock goes from 02:00 to 03:00) fires at the jump (03:00 new time);
//     several skipped times fire once, together.
//   - When the clock falls back, a time it reads twice fires the first
//     time, and not again an hour later: "*/30 * * * *" fires at 02:00 and
//     02:30 summer time, then 03:00 winter time, an hour and a half later.
//
// So a daily job is neither lost nor doubled on the nights of a change.
//
// An interval schedule fires at Anchor + k×Interval for whole k (Anchor
// itself when it is after after); a zero Anchor means CreatedAt. Intervals
// are elapsed time and ignore the time zone's clock changes.
func Next(sc store.Schedule, after time.Time, n int) ([]time.Time, error) {
	loc, err := location(sc)
	if err != nil {
		return nil, err
	}
	switch {
	case sc.Cron != "" && sc.Interval != 0:
		return nil, invalidf(sc, "it has both a cron expression and an interval: keep one")
	case sc.Cron != "":
		return nextCron(sc, loc, after, n)
	case sc.Interval > 0:
		return nextInterval(sc, loc, after, n)
	case sc.Interval < 0:
		return nil, invalidf(sc, "its interval %s is negative: give a positive interval", sc.Interval)
	default:
		return nil, invalidf(sc, "it has neither a cron expression nor an interval: give one")
	}
}

// invalidf returns an ErrInvalid error about schedule sc.
func invalidf(sc store.Schedule, format string, args ...any) error {
	return reeve.Errorf(reeve.CodeInvalid, "schedule %s: %s", sc.ID, fmt.Sprintf(format, args...))
}

// location returns the time zone of sc.
func location(sc store.Schedule) (*time.Location, error) {
	if sc.Timezone == "" || sc.Timezone == "UTC" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(sc.Timezone)
	if err != nil || sc.Timezone == "Local" {
		return nil, invalidf(sc, "time zone %q is not known: use an IANA name like \"Europe/Paris\", or none for UTC", sc.Timezone)
	}
	return loc, nil
}

// nextInterval returns the next n times Anchor + k×Interval after after.
func nextInterval(sc store.Schedule, loc *time.Location, after time.Time, n int) ([]time.Time, error) {
	anchor := sc.Anchor
	if anchor.IsZero() {
		anchor = sc.CreatedAt
	}
	if anchor.IsZero() {
		return nil, invalidf(sc, "its interval has no anchor and the schedule no creation time: give an anchor")
	}
	if n <= 0 {
		return nil, nil
	}
	t := anchor
	if d := after.Sub(anchor); d >= 0 {
		if d == math.MaxInt64 { // saturated: more than 292 years apart
			return nil, invalidf(sc, "its anchor %s is too far before %s: give a recent anchor", anchor.Format(time.RFC3339), after.Format(time.RFC3339))
		}
		// The last fire time at or before after is anchor + (d/I)×I; the
		// product is at most d, so it does not overflow.
		t = anchor.Add(d / sc.Interval * sc.Interval).Add(sc.Interval)
	}
	times := make([]time.Time, n)
	for i := range times {
		times[i] = t.In(loc)
		t = t.Add(sc.Interval)
	}
	return times, nil
}

// nextCron returns the next n fire times of sc's cron expression after
// after. It searches the zone's wall-clock times with gronx (in UTC, which
// has no clock changes), then maps each to the first instant the zone's
// clock reads it or later.
func nextCron(sc store.Schedule, loc *time.Location, after time.Time, n int) ([]time.Time, error) {
	if !gronx.IsValid(sc.Cron) {
		return nil, invalidf(sc, "cron %q is not valid: use five fields (minute hour day-of-month month day-of-week) like \"30 2 * * *\", or a descriptor like @daily", sc.Cron)
	}
	if n <= 0 {
		return nil, nil
	}
	// A wall-clock time w fires after after if and only if w is later than
	// every wall-clock time the zone's clock read until after: the clock
	// reads after's own time, or, in the hour after it fell back, the
	// times it read before.
	cur := highWater(after, loc)
	times := make([]time.Time, 0, n)
	last := after
	for range 4*n + 16 { // each pass fires a time, but for the rare time that maps onto the one before
		w, ok := nextWall(sc.Cron, cur)
		if !ok {
			return times, nil // it fires no more
		}
		t := firstInstant(w, loc)
		if t.After(last) {
			times = append(times, t.In(loc))
			last = t
			if len(times) == n {
				return times, nil
			}
		}
		cur = w
		if jw := wall(t, loc); jw.After(cur) {
			// w was skipped by a jump forward and fires at the jump: the
			// times up to the clock's reading there fire with it.
			cur = jw
		}
	}
	return times, nil
}

// nextWall returns the first wall-clock time (a time in UTC) after cur that
// the cron expression matches, or false if gronx finds none (its search is
// bounded: it looks some years ahead).
func nextWall(expr string, cur time.Time) (w time.Time, ok bool) {
	defer func() { // gronx is third-party code fed user input: it must not bring the server down
		if recover() != nil {
			w, ok = time.Time{}, false
		}
	}()
	from := cur
	for range 3 {
		w, err := gronx.NextTickAfter(expr, from, false)
		if err != nil {
			return time.Time{}, false
		}
		if w.After(cur) {
			return w, true
		}
		from = w // gronx works in whole seconds; step past cur's fraction
	}
	return time.Time{}, false
}

// wall returns the wall-clock time of t in loc, as a time in UTC.
func wall(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// highWater returns the latest wall-clock time (as a time in UTC) that
// loc's clock read at or before t: t's own, or, shortly after the clock fell
// back, the time it read just before.
func highWater(t time.Time, loc *time.Location) time.Time {
	w := wall(t, loc)
	if start, _ := t.In(loc).ZoneBounds(); !start.IsZero() {
		if before := wall(start.Add(-time.Nanosecond), loc); before.After(w) {
			w = before
		}
	}
	return w
}

// firstInstant returns the first instant at which loc's clock reads w (a
// wall-clock time, as a time in UTC) or later: the instant it reads w, the
// first of two when the clock falls back over w, or the jump when the clock
// jumps forward over w.
func firstInstant(w time.Time, loc *time.Location) time.Time {
	if loc == time.UTC {
		return w
	}
	var exact, jump time.Time
	// The instant is w minus the zone's offset then; try the offsets in
	// effect within two days of it (more than the largest offset).
	for _, probe := range []time.Duration{-48 * time.Hour, -24 * time.Hour, 0, 24 * time.Hour, 48 * time.Hour} {
		_, off := w.Add(probe).In(loc).Zone()
		c := w.Add(-time.Duration(off) * time.Second)
		switch cw := wall(c, loc); {
		case cw.Equal(w):
			if exact.IsZero() || c.Before(exact) {
				exact = c
			}
		case cw.After(w):
			// The clock reads past w at c. If w falls in a jump forward,
			// the clock first read past it where c's zone began.
			j := c
			if start, _ := c.In(loc).ZoneBounds(); !start.IsZero() && !wall(start, loc).Before(w) {
				j = start
			}
			if jump.IsZero() || j.Before(jump) {
				jump = j
			}
		}
	}
	switch {
	case !exact.IsZero():
		return exact
	case !jump.IsZero():
		return jump
	default:
		y, mo, d := w.Date()
		h, mi, s := w.Clock()
		return time.Date(y, mo, d, h, mi, s, w.Nanosecond(), loc)
	}
}
