package storetest

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

func testResults(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("PutAndGetByteExact", func(t *testing.T) {
		t.Parallel()
		big := make([]byte, 1<<20)
		for i := range big {
			big[i] = byte(i*13 + i>>9)
		}
		cases := []struct {
			name  string
			value []byte
		}{
			{"JSON", []byte(`{"rows": 3, "name": "é"}`)},
			{"Binary", []byte{0x00, 0xff, 0x01, 0x80, 0x00, '\\', '\'', '"', 0xfe}},
			{"InvalidUTF8", []byte("a\xc3\x28b\xed\xa0\x80")},
			{"Empty", []byte{}},
			{"Nil", nil},
			{"Big", big},
		}
		s := open(t)
		p := createProject(t, s, "etl")
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ctx := t.Context()
				key := "etl/0195f3c2/" + strings.ToLower(c.name) + ".json"
				updated, err := s.PutResult(ctx, p.ID, key, c.value)
				requireNoError(t, err, "PutResult")
				requireRecent(t, "updated_at", updated)
				if !updated.Equal(updated.Truncate(time.Microsecond)) || updated.Location().String() != "UTC" {
					t.Errorf("updated_at %v is not UTC to the microsecond", updated)
				}
				got, at, err := s.GetResult(ctx, p.ID, key)
				requireNoError(t, err, "GetResult")
				if !bytes.Equal(got, c.value) || got == nil {
					t.Errorf("GetResult value = %d bytes (nil %v), want %d bytes byte for byte, never nil", len(got), got == nil, len(c.value))
				}
				requireTime(t, "updated_at", at, updated)
			})
		}
	})

	t.Run("PutReplaces", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		p := createProject(t, s, "etl")
		first, err := s.PutResult(ctx, p.ID, "cache/extract/ab12.json", []byte("one"))
		requireNoError(t, err, "PutResult")
		boundary()
		second, err := s.PutResult(ctx, p.ID, "cache/extract/ab12.json", []byte("two"))
		requireNoError(t, err, "PutResult again")
		if !second.After(first) {
			t.Errorf("updated_at after a replace = %v, want after %v", second, first)
		}
		got, at, err := s.GetResult(ctx, p.ID, "cache/extract/ab12.json")
		requireNoError(t, err, "GetResult")
		if string(got) != "two" {
			t.Errorf("value after a replace = %q, want %q", got, "two")
		}
		requireTime(t, "stored updated_at", at, second)
	})

	t.Run("KeyedByProject", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		a := createProject(t, s, "a")
		b := createProject(t, s, "b")
		const key = "etl/run/extract.json"
		_, err := s.PutResult(ctx, a.ID, key, []byte("of a"))
		requireNoError(t, err, "PutResult(a)")
		_, _, err = s.GetResult(ctx, b.ID, key)
		requireErrorIs(t, err, reeve.ErrNotFound, key)
		_, err = s.PutResult(ctx, b.ID, key, []byte("of b"))
		requireNoError(t, err, "PutResult(b)")
		for p, want := range map[string]string{a.ID: "of a", b.ID: "of b"} {
			got, _, err := s.GetResult(ctx, p, key)
			requireNoError(t, err, "GetResult")
			if string(got) != want {
				t.Errorf("project %s: value %q, want %q", p, got, want)
			}
		}
	})

	t.Run("Keys", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		p := createProject(t, s, "etl")
		cases := []struct {
			key   string
			valid bool
		}{
			{"a", true},
			{"etl/0195f3c2-7d1e/transform/3.json", true},
			{"cache/my.task/0a1b2c.gob", true},
			{"a..b/c", true},
			{"pässe/日本.json", true},
			{strings.Repeat("k", store.MaxResultKey), true},
			{"", false},
			{"/abs/key", false},
			{"..", false},
			{"../escape", false},
			{"a/../b", false},
			{"a/..", false},
			{"a\x00b", false},
			{"a\nb", false},
			{"bad\xffutf8", false},
			{strings.Repeat("k", store.MaxResultKey+1), false},
		}
		for _, c := range cases {
			ctx := t.Context()
			_, err := s.PutResult(ctx, p.ID, c.key, []byte("v"))
			if c.valid {
				requireNoError(t, err, "PutResult(%q)", c.key)
				got, _, err := s.GetResult(ctx, p.ID, c.key)
				requireNoError(t, err, "GetResult(%q)", c.key)
				if string(got) != "v" {
					t.Errorf("GetResult(%q) = %q, want %q", c.key, got, "v")
				}
				continue
			}
			if err == nil {
				t.Errorf("PutResult(%q) = nil error, want ErrInvalid", c.key)
				continue
			}
			requireErrorIs(t, err, reeve.ErrInvalid)
			_, _, err = s.GetResult(ctx, p.ID, c.key)
			requireErrorIs(t, err, reeve.ErrInvalid)
		}
	})

	t.Run("UnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		p := createProject(t, s, "etl")
		const project = "0190c7a4-0000-7000-8000-000000000030"
		_, err := s.PutResult(ctx, project, "k.json", []byte("v"))
		requireErrorIs(t, err, reeve.ErrNotFound, project)
		_, _, err = s.GetResult(ctx, project, "k.json")
		requireErrorIs(t, err, reeve.ErrNotFound, "k.json")
		_, _, err = s.GetResult(ctx, p.ID, "no/such/result.json")
		requireErrorIs(t, err, reeve.ErrNotFound, "no/such/result.json")
	})

	t.Run("ConcurrentPutsOfOneKey", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		p := createProject(t, s, "etl")
		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = s.PutResult(ctx, p.ID, "cache/shared.json", fmt.Appendf(nil, "writer %d", i))
			})
		}
		wg.Wait()
		for i, err := range errs {
			requireNoError(t, err, "PutResult of writer %d", i)
		}
		got, _, err := s.GetResult(ctx, p.ID, "cache/shared.json")
		requireNoError(t, err, "GetResult")
		if !strings.HasPrefix(string(got), "writer ") {
			t.Errorf("after concurrent puts: %q, want one writer's value", got)
		}
	})
}
