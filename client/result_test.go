package client_test

import (
	"bytes"
	"testing"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
)

func TestResults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	run := e.createRun(t, e.register(t).Flow.ID)
	minted, err := e.admin.MintRunToken(ctx, run.ID)
	check(t, "MintRunToken", err)
	runner := newClient(t, e.url, minted.Secret)

	// Keys with characters that need escaping arrive as they are.
	for _, key := range []string{"etl/" + run.ID + "/transform/3.json", "cache/my task/ä?#%.json"} {
		value := []byte{0, 1, 2, 0xff, '\n'}
		check(t, "PutResult", runner.PutResult(ctx, run.ID, key, value))
		got, at, err := runner.GetResult(ctx, run.ID, key)
		check(t, "GetResult", err)
		if !bytes.Equal(got, value) || at.IsZero() {
			t.Errorf("GetResult(%q) = %q, %v; want %q and a time", key, got, at, value)
		}
	}
	check(t, "PutResult of nothing", runner.PutResult(ctx, run.ID, "empty.json", nil))
	if got, _, err := runner.GetResult(ctx, run.ID, "empty.json"); err != nil || got == nil || len(got) != 0 {
		t.Errorf("GetResult of an empty result = %q (nil %v), %v; want empty, not nil", got, got == nil, err)
	}

	_, _, err = runner.GetResult(ctx, run.ID, "etl/nothing.json")
	wantErr(t, err, reeve.ErrNotFound, `read result "etl/nothing.json" of flow run `+run.ID)
	for _, key := range []string{"", "a//b", "./a", "a/../b", "/abs", "trailing/"} {
		err := runner.PutResult(ctx, run.ID, key, []byte("v"))
		wantErr(t, err, reeve.ErrInvalid, "write result")
		_, _, err = runner.GetResult(ctx, run.ID, key)
		wantErr(t, err, reeve.ErrInvalid, "read result")
	}
	err = runner.PutResult(ctx, run.ID, "big.json", make([]byte, api.DefaultMaxResultBytes+1))
	wantErr(t, err, reeve.ErrInvalid, "over the server result store's limit of 1 MB", "give the flow a blob store")

	other := e.createRun(t, e.register(t).Flow.ID)
	err = runner.PutResult(ctx, other.ID, "x.json", []byte("v"))
	wantErr(t, err, reeve.ErrForbidden)
}
