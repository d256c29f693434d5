package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/store"
)

// schedulerService is the scheduler as the server command runs it.
type schedulerService struct {
	kick func()
	next func(sc store.Schedule, after time.Time, n int) ([]time.Time, error)
	run  func(ctx context.Context)
}

func (c *CLI) newScheduler(st store.Store, log *slog.Logger) *schedulerService {
	return &schedulerService{
		kick: func() {},
		next: scheduler.Next,
		run:  func(ctx context.Context) { <-ctx.Done() },
	}
}
