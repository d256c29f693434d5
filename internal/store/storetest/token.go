package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

// hash returns the hex SHA-256 of secret, as the server hashes tokens.
func hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// requireToken fails unless got is want as stored.
func requireToken(tb testing.TB, got, want store.Token) {
	tb.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.Role != want.Role || got.Hash != want.Hash ||
		got.FlowRunID != want.FlowRunID || got.Attempt != want.Attempt {
		tb.Errorf("token = %+v, want %+v", got, want)
	}
	requireTime(tb, "token created_at", got.CreatedAt, want.CreatedAt)
	requireTime(tb, "token expires_at", got.ExpiresAt, want.ExpiresAt)
	requireTime(tb, "token revoked_at", got.RevokedAt, want.RevokedAt)
}

func testTokens(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CreateAndByHash", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		cases := []struct {
			name string
			in   store.Token
		}{
			{"Admin", store.Token{Name: "root", Role: store.RoleAdmin}},
			{"Developer", store.Token{Name: "ci", Role: store.RoleDeveloper, ExpiresAt: at(24 * time.Hour)}},
			{"Agent", store.Token{Name: "agent-1", Role: store.RoleAgent}},
			{"NoName", store.Token{Role: store.RoleAgent}},
			{"Run", store.Token{Name: "run", Role: store.RoleRun, FlowRunID: f.run.ID, ExpiresAt: at(time.Hour)}},
			{"RunOfAttempt", store.Token{Name: "run-2", Role: store.RoleRun, FlowRunID: f.run.ID, Attempt: 2}},
			// RevokedAt is the store's to set.
			{"RevokedAtIgnored", store.Token{Name: "fresh", Role: store.RoleDeveloper, RevokedAt: at(0)}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				in := c.in
				in.Hash = hash(c.name)
				tok, err := s.CreateToken(t.Context(), in)
				requireNoError(t, err, "CreateToken")
				if tok.ID == "" || tok.Name != in.Name || tok.Role != in.Role || tok.Hash != in.Hash || tok.FlowRunID != in.FlowRunID ||
					tok.Attempt != in.Attempt {
					t.Errorf("CreateToken = %+v, want an ID and the fields of %+v", tok, in)
				}
				requireRecent(t, "created_at", tok.CreatedAt)
				requireTime(t, "expires_at", tok.ExpiresAt, micro(in.ExpiresAt))
				if !tok.RevokedAt.IsZero() {
					t.Errorf("a new token is revoked at %v", tok.RevokedAt)
				}
				got, err := s.TokenByHash(t.Context(), in.Hash)
				requireNoError(t, err, "TokenByHash")
				requireToken(t, got, tok)
			})
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		cases := []struct {
			name string
			in   store.Token
		}{
			{"NoHash", store.Token{Name: "x", Role: store.RoleAdmin}},
			{"NoRole", store.Token{Name: "x", Hash: hash("a")}},
			{"UnknownRole", store.Token{Name: "x", Role: "superuser", Hash: hash("b")}},
			{"RoleCase", store.Token{Name: "x", Role: "Admin", Hash: hash("c")}},
			{"RunWithoutFlowRun", store.Token{Name: "x", Role: store.RoleRun, Hash: hash("d")}},
			{"AdminWithFlowRun", store.Token{Name: "x", Role: store.RoleAdmin, FlowRunID: f.run.ID, Hash: hash("e")}},
			{"AgentWithFlowRun", store.Token{Name: "x", Role: store.RoleAgent, FlowRunID: f.run.ID, Hash: hash("f")}},
		}
		for _, c := range cases {
			_, err := s.CreateToken(t.Context(), c.in)
			if err == nil {
				t.Errorf("%s: CreateToken = nil error, want ErrInvalid", c.name)
				continue
			}
			requireErrorIs(t, err, reeve.ErrInvalid)
		}
		list, err := s.ListTokens(t.Context())
		requireNoError(t, err, "ListTokens")
		if len(list) != 0 {
			t.Errorf("invalid tokens were created: %+v", list)
		}
	})

	t.Run("TakenHashIsConflict", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		f := seed(t, s, "etl")
		first, err := s.CreateToken(ctx, store.Token{Name: "one", Role: store.RoleAdmin, Hash: hash("same")})
		requireNoError(t, err, "CreateToken")
		for _, in := range []store.Token{
			{Name: "two", Role: store.RoleDeveloper, Hash: hash("same")},
			{Name: "run", Role: store.RoleRun, FlowRunID: f.run.ID, Hash: hash("same")},
		} {
			_, err = s.CreateToken(ctx, in)
			requireErrorIs(t, err, reeve.ErrConflict)
		}
		got, err := s.TokenByHash(ctx, hash("same"))
		requireNoError(t, err, "TokenByHash")
		requireToken(t, got, first)
	})

	t.Run("RunTokenUnknownFlowRunIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const id = "0190c7a4-0000-7000-8000-000000000020"
		_, err := s.CreateToken(t.Context(), store.Token{Name: "run", Role: store.RoleRun, FlowRunID: id, Hash: hash("r")})
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})

	t.Run("ByHashUnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		h := hash("nobody")
		_, err := s.TokenByHash(t.Context(), h)
		requireErrorIs(t, err, reeve.ErrNotFound)
		if strings.Contains(err.Error(), h) {
			t.Errorf("the error shows the hash: %v", err)
		}
	})

	t.Run("ListOldestFirstWithoutRunTokens", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		f := seed(t, s, "etl")
		list, err := s.ListTokens(ctx)
		requireNoError(t, err, "ListTokens on an empty store")
		if len(list) != 0 {
			t.Fatalf("ListTokens on an empty store = %+v", list)
		}
		var want []store.Token
		for i, role := range []string{store.RoleDeveloper, store.RoleRun, store.RoleAdmin, store.RoleRun, store.RoleAgent} {
			in := store.Token{Name: role, Role: role, Hash: hash(string(rune('a' + i)))}
			if role == store.RoleRun {
				in.FlowRunID = f.run.ID
			}
			tok, err := s.CreateToken(ctx, in)
			requireNoError(t, err, "CreateToken(%s)", role)
			if role != store.RoleRun {
				want = append(want, tok)
			}
		}
		list, err = s.ListTokens(ctx)
		requireNoError(t, err, "ListTokens")
		if len(list) != len(want) {
			t.Fatalf("ListTokens = %d tokens %+v, want %d: every token but the run tokens", len(list), list, len(want))
		}
		for i := range want {
			requireToken(t, list[i], want[i])
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		tok, err := s.CreateToken(ctx, store.Token{Name: "ci", Role: store.RoleDeveloper, Hash: hash("ci")})
		requireNoError(t, err, "CreateToken")
		other, err := s.CreateToken(ctx, store.Token{Name: "other", Role: store.RoleDeveloper, Hash: hash("other")})
		requireNoError(t, err, "CreateToken")

		revoked, err := s.RevokeToken(ctx, tok.ID)
		requireNoError(t, err, "RevokeToken")
		requireRecent(t, "revoked_at", revoked.RevokedAt)
		want := tok
		want.RevokedAt = revoked.RevokedAt
		requireToken(t, revoked, want)

		boundary()
		again, err := s.RevokeToken(ctx, tok.ID)
		requireNoError(t, err, "RevokeToken again")
		requireToken(t, again, want) // the first revocation's time stays

		// A revoked token is still found by its hash: the server tells
		// "revoked" from "unknown".
		got, err := s.TokenByHash(ctx, tok.Hash)
		requireNoError(t, err, "TokenByHash of a revoked token")
		requireToken(t, got, want)
		got, err = s.TokenByHash(ctx, other.Hash)
		requireNoError(t, err, "TokenByHash(other)")
		requireToken(t, got, other)

		const id = "0190c7a4-0000-7000-8000-000000000021"
		_, err = s.RevokeToken(ctx, id)
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})
}
