// Command etl is Reeve's first example: a flow that extracts a list of
// record IDs, transforms each one in its own mapped task run (with retries
// for a flaky source), and loads the results in one reduce step.
//
//	go run ./examples/etl run etl
//	go run ./examples/etl run etl --param n=100 --workers 16
package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/reevehq/reeve"
)

// Row is one transformed record.
type Row struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Score int    `json:"score"`
}

// Summary is what the load step reports.
type Summary struct {
	Rows  int `json:"rows"`
	Total int `json:"total"`
}

// Extract lists the IDs of the records to process.
var Extract = reeve.NewTask1("etl.extract", func(ctx context.Context, n int) ([]int, error) {
	if n < 0 {
		return nil, reeve.Fail(fmt.Sprintf("n must not be negative, got %d", n))
	}
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i + 1
	}
	reeve.Logger(ctx).Info("extracted records", "count", n)
	return ids, nil
})

// flaky makes every fifth record fail on its first attempt, like a source
// that times out now and then; the task's retries absorb it.
var flaky sync.Map

// Transform turns one ID into a Row. It is mapped: one task run per ID.
var Transform = reeve.NewTask2("etl.transform", func(ctx context.Context, id int, prefix string) (Row, error) {
	if id%5 == 0 {
		info, _ := reeve.Info(ctx)
		if _, seen := flaky.LoadOrStore(fmt.Sprint(info.FlowRunID, id), true); !seen {
			return Row{}, fmt.Errorf("source unavailable for record %d (transient)", id)
		}
	}
	return Row{ID: id, Name: fmt.Sprintf("%s-%03d", prefix, id), Score: id * id % 97}, nil
}, reeve.Retries(2, 20*time.Millisecond))

// Load receives every transformed row at once (a reduce) and sums them up.
var Load = reeve.NewTask1("etl.load", func(ctx context.Context, rows []Row) (Summary, error) {
	s := Summary{Rows: len(rows)}
	for _, r := range rows {
		s.Total += r.Score
	}
	reeve.Logger(ctx).Info("loaded rows", "rows", s.Rows, "total", s.Total)
	return s, nil
})

// Flow builds the etl flow. Its parameters: n, how many records (default
// 20), and prefix, the name prefix of the rows (default "rec").
func Flow() *reeve.Flow {
	f := reeve.NewFlow("etl", reeve.Description("Extract records, transform each one, load them all"))
	n := reeve.Param(f, "n", reeve.Default(20))
	prefix := reeve.Param(f, "prefix", reeve.Default("rec"))
	ids := Extract.Bind(f, n)
	rows := Transform.Map(f, reeve.Each(ids), reeve.Unmapped(prefix))
	Load.Bind(f, rows)
	return f
}

func main() { reeve.Main(Flow()) }
