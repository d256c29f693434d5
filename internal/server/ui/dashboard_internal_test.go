package ui

import (
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
)

func TestAgentsPoll(t *testing.T) {
	t.Parallel()
	for offline, want := range map[time.Duration]time.Duration{
		90 * time.Second: 10 * time.Second, // the default window: capped
		20 * time.Second: 5 * time.Second,
		2 * time.Second:  time.Second, // a test's window: at least 1 s
	} {
		if got := agentsPoll(offline); got != want {
			t.Errorf("agentsPoll(%v) = %v, want %v", offline, got, want)
		}
	}
}

func TestScheduleZone(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		sc   api.Schedule
		want string
	}{
		{api.Schedule{Cron: "0 6 * * *", Timezone: "Europe/Paris"}, "Europe/Paris"},
		{api.Schedule{Cron: "0 6 * * *"}, "UTC"},
		{api.Schedule{Interval: api.Duration(time.Minute)}, "UTC"},
		{api.Schedule{Cron: "0 6 * * *", Timezone: "Not/AZone"}, "UTC"},
	} {
		loc, name := scheduleZone(c.sc)
		if name != c.want || loc.String() != c.want {
			t.Errorf("scheduleZone(%+v) = %v, %q; want %q", c.sc, loc, name, c.want)
		}
	}
}
