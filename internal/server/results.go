package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/store"
)

// The server's own result store: small task results (checkpoints, cache
// entries) kept in the database by key in the run's project, so that
// server runs retry, restart and resume with no blob store to set up. A
// runner reaches it with its run token through the "reeve://server" result
// store URL (internal/result/apiblob). Results over Config.MaxResultBytes
// are refused with a message that says to configure a blob store.

// blobStoreHint tells a user what to do about a result too large for the
// server's result store.
const blobStoreHint = `give the flow a blob store (reeve.ResultStore("s3://bucket/prefix") or a file:// directory all agents share)`

// resultRun returns the flow run a results route names: a run token's own
// run (loaded when authenticating), else the run by ID.
func (s *Server) resultRun(ctx context.Context, r *http.Request, c *caller) (store.FlowRun, error) {
	if c.run != nil {
		return *c.run, nil
	}
	return s.store.GetFlowRun(ctx, r.PathValue("id"))
}

// putResult writes a result under a key of the run's project.
func (s *Server) putResult(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	ctx := r.Context()
	key := r.PathValue("key")
	if err := store.CheckResultKey(key); err != nil {
		return nil, err
	}
	// The body is the value in base64 (4 bytes per 3) in a small object.
	limit := max(int64(api.MaxLargeBodyBytes), int64(base64.StdEncoding.EncodedLen(s.maxResult))+4096)
	if r.ContentLength > limit {
		return nil, invalid("result %q: the request body is larger than %d bytes, over the server result store's limit of %s: %s",
			key, limit, byteSize(int64(s.maxResult)), blobStoreHint)
	}
	run, err := s.resultRun(ctx, r, c)
	if err != nil {
		return nil, err
	}
	// A superseded runner must not overwrite what the current attempt writes.
	if err := c.fence(run); err != nil {
		return nil, err
	}
	var req api.Result
	if err := decode(r, w, limit, &req); err != nil {
		return nil, err
	}
	if len(req.Value) > s.maxResult {
		return nil, invalid("result %q is %s, over the server result store's limit of %s: %s",
			key, byteSize(int64(len(req.Value))), byteSize(int64(s.maxResult)), blobStoreHint)
	}
	updated, err := s.store.PutResult(ctx, run.ProjectID, key, req.Value)
	if err != nil {
		return nil, err
	}
	return api.Result{Value: req.Value, UpdatedAt: updated}, nil
}

// getResult reads a result under a key of the run's project.
func (s *Server) getResult(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	ctx := r.Context()
	key := r.PathValue("key")
	if err := store.CheckResultKey(key); err != nil {
		return nil, err
	}
	run, err := s.resultRun(ctx, r, c)
	if err != nil {
		return nil, err
	}
	value, updated, err := s.store.GetResult(ctx, run.ProjectID, key)
	if err != nil {
		return nil, err
	}
	return api.Result{Value: value, UpdatedAt: updated}, nil
}

// byteSize says a size the way a user reads it: "3.2 MB", "512 KB",
// "12 bytes" (1 MB is 2^20 bytes).
func byteSize(n int64) string {
	unit := func(v float64, name string) string {
		s := strconv.FormatFloat(v, 'f', 1, 64)
		return strings.TrimSuffix(s, ".0") + " " + name
	}
	switch {
	case n >= 1<<30:
		return unit(float64(n)/(1<<30), "GB")
	case n >= 1<<20:
		return unit(float64(n)/(1<<20), "MB")
	case n >= 1<<10:
		return unit(float64(n)/(1<<10), "KB")
	}
	return fmt.Sprintf("%d bytes", n)
}

// putResults stores the results that come with a batch of task-run
// states, in the run's project, before the states that name them.
func (s *Server) putResults(r *http.Request, c *caller, results []api.ResultPut) error {
	if len(results) == 0 {
		return nil
	}
	ctx := r.Context()
	for i, res := range results {
		if err := store.CheckResultKey(res.Key); err != nil {
			return invalid("results[%d]: %v", i, err)
		}
		if len(res.Value) > s.maxResult {
			return invalid("result %q is %s, over the server result store's limit of %s: %s",
				res.Key, byteSize(int64(len(res.Value))), byteSize(int64(s.maxResult)), blobStoreHint)
		}
	}
	run := c.run
	if run == nil {
		got, err := s.store.GetFlowRun(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		run = &got
	}
	for _, res := range results {
		if _, err := s.store.PutResult(ctx, run.ProjectID, res.Key, res.Value); err != nil {
			return err
		}
	}
	return nil
}
