package cli

import (
	"log/slog"
	"time"

	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/store"
)

// newScheduler returns the scheduler that turns st's schedules into runs.
func newScheduler(st store.Store, runs int, interval time.Duration, log *slog.Logger) (*scheduler.Scheduler, error) {
	return scheduler.New(scheduler.Config{
		Store:    st,
		Runs:     runs,
		Interval: interval,
		Logger:   log.With("service", "scheduler"),
	})
}
