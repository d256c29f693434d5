package storetest

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

func testSecrets(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("PutAndGetByteExact", func(t *testing.T) {
		t.Parallel()
		big := make([]byte, 64<<10)
		for i := range big {
			big[i] = byte(i*7 + i>>8)
		}
		cases := []struct {
			name  string
			value []byte
		}{
			{"Text", []byte("s3cr3t")},
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
				name := "SECRET_" + strings.ToUpper(c.name)
				put, err := s.PutSecret(ctx, p.ID, name, c.value)
				requireNoError(t, err, "PutSecret")
				if put.ProjectID != p.ID || put.Name != name || !bytes.Equal(put.Value, c.value) {
					t.Errorf("PutSecret = %+v, want project %s, name %s, the value", put, p.ID, name)
				}
				requireRecent(t, "created_at", put.CreatedAt)
				requireTime(t, "updated_at", put.UpdatedAt, put.CreatedAt)

				got, err := s.GetSecret(ctx, p.ID, name)
				requireNoError(t, err, "GetSecret")
				if got.ProjectID != p.ID || got.Name != name {
					t.Errorf("GetSecret = %+v, want project %s, name %s", got, p.ID, name)
				}
				if !bytes.Equal(got.Value, c.value) || got.Value == nil {
					t.Errorf("GetSecret value = %q (nil %v), want %q byte for byte, never nil", got.Value, got.Value == nil, c.value)
				}
				requireTime(t, "created_at", got.CreatedAt, put.CreatedAt)
				requireTime(t, "updated_at", got.UpdatedAt, put.UpdatedAt)
			})
		}
	})

	t.Run("PutReplaces", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		p := createProject(t, s, "etl")
		first, err := s.PutSecret(ctx, p.ID, "DB_PASSWORD", []byte("one"))
		requireNoError(t, err, "PutSecret")
		boundary()
		second, err := s.PutSecret(ctx, p.ID, "DB_PASSWORD", []byte("two"))
		requireNoError(t, err, "PutSecret again")
		requireTime(t, "created_at after a replace", second.CreatedAt, first.CreatedAt)
		if !second.UpdatedAt.After(first.UpdatedAt) {
			t.Errorf("updated_at after a replace = %v, want after %v", second.UpdatedAt, first.UpdatedAt)
		}
		got, err := s.GetSecret(ctx, p.ID, "DB_PASSWORD")
		requireNoError(t, err, "GetSecret")
		if string(got.Value) != "two" {
			t.Errorf("value after a replace = %q, want %q", got.Value, "two")
		}
		requireTime(t, "stored created_at", got.CreatedAt, first.CreatedAt)
		requireTime(t, "stored updated_at", got.UpdatedAt, second.UpdatedAt)
		list, err := s.ListSecrets(ctx, p.ID)
		requireNoError(t, err, "ListSecrets")
		if len(list) != 1 {
			t.Errorf("%d secrets after putting one name twice, want 1", len(list))
		}
	})

	t.Run("ListByNameWithoutValues", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		p := createProject(t, s, "etl")
		other := createProject(t, s, "other")
		list, err := s.ListSecrets(ctx, p.ID)
		requireNoError(t, err, "ListSecrets of a project without secrets")
		if len(list) != 0 {
			t.Fatalf("ListSecrets of a project without secrets = %+v", list)
		}
		for _, name := range []string{"charlie", "ALPHA", "bravo", "_delta"} {
			_, err := s.PutSecret(ctx, p.ID, name, []byte("value of "+name))
			requireNoError(t, err, "PutSecret(%s)", name)
		}
		_, err = s.PutSecret(ctx, other.ID, "echo", []byte("x"))
		requireNoError(t, err, "PutSecret(other)")

		list, err = s.ListSecrets(ctx, p.ID)
		requireNoError(t, err, "ListSecrets")
		var names []string
		for _, sec := range list {
			names = append(names, sec.Name)
			if sec.Value != nil {
				t.Errorf("ListSecrets returned the value of %s: %q", sec.Name, sec.Value)
			}
			if sec.ProjectID != p.ID {
				t.Errorf("secret %s: project %s, want %s", sec.Name, sec.ProjectID, p.ID)
			}
			requireRecent(t, sec.Name+" created_at", sec.CreatedAt)
			requireRecent(t, sec.Name+" updated_at", sec.UpdatedAt)
		}
		// Bytewise order, as both stores sort names.
		if want := []string{"ALPHA", "_delta", "bravo", "charlie"}; !slices.Equal(names, want) {
			t.Errorf("ListSecrets names = %q, want %q", names, want)
		}
	})

	t.Run("SameNameInTwoProjects", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		a := createProject(t, s, "a")
		b := createProject(t, s, "b")
		_, err := s.PutSecret(ctx, a.ID, "TOKEN", []byte("of a"))
		requireNoError(t, err, "PutSecret(a)")
		_, err = s.PutSecret(ctx, b.ID, "TOKEN", []byte("of b"))
		requireNoError(t, err, "PutSecret(b)")
		for p, want := range map[string]string{a.ID: "of a", b.ID: "of b"} {
			got, err := s.GetSecret(ctx, p, "TOKEN")
			requireNoError(t, err, "GetSecret")
			if string(got.Value) != want {
				t.Errorf("project %s: value %q, want %q", p, got.Value, want)
			}
		}
		requireNoError(t, s.DeleteSecret(ctx, a.ID, "TOKEN"), "DeleteSecret(a)")
		if _, err := s.GetSecret(ctx, b.ID, "TOKEN"); err != nil {
			t.Errorf("deleting project a's secret deleted project b's: %v", err)
		}
	})

	t.Run("Names", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		p := createProject(t, s, "etl")
		cases := []struct {
			name  string
			valid bool
		}{
			{"A", true},
			{"_", true},
			{"db_password_2", true},
			{"DB_PASSWORD", true},
			{strings.Repeat("a", store.MaxSecretName), true},
			{"", false},
			{"2FA", false},
			{"db-password", false},
			{"db password", false},
			{"db.password", false},
			{"pässword", false},
			{"a\x00b", false},
			{strings.Repeat("a", store.MaxSecretName+1), false},
		}
		for _, c := range cases {
			_, err := s.PutSecret(t.Context(), p.ID, c.name, []byte("v"))
			if c.valid {
				requireNoError(t, err, "PutSecret(%q)", c.name)
				continue
			}
			if err == nil {
				t.Errorf("PutSecret(%q) = nil error, want ErrInvalid", c.name)
				continue
			}
			requireErrorIs(t, err, reeve.ErrInvalid)
		}
	})

	t.Run("UnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		p := createProject(t, s, "etl")
		const project = "0190c7a4-0000-7000-8000-000000000010"
		_, err := s.PutSecret(ctx, project, "TOKEN", []byte("v"))
		requireErrorIs(t, err, reeve.ErrNotFound, project)
		_, err = s.ListSecrets(ctx, project)
		requireErrorIs(t, err, reeve.ErrNotFound, project)
		_, err = s.GetSecret(ctx, p.ID, "NO_SUCH_SECRET")
		requireErrorIs(t, err, reeve.ErrNotFound, "NO_SUCH_SECRET")
		_, err = s.GetSecret(ctx, project, "TOKEN")
		requireErrorIs(t, err, reeve.ErrNotFound, "TOKEN")
		err = s.DeleteSecret(ctx, p.ID, "NO_SUCH_SECRET")
		requireErrorIs(t, err, reeve.ErrNotFound, "NO_SUCH_SECRET")
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		p := createProject(t, s, "etl")
		for _, name := range []string{"KEEP", "DROP"} {
			_, err := s.PutSecret(ctx, p.ID, name, []byte(name))
			requireNoError(t, err, "PutSecret(%s)", name)
		}
		requireNoError(t, s.DeleteSecret(ctx, p.ID, "DROP"), "DeleteSecret")
		_, err := s.GetSecret(ctx, p.ID, "DROP")
		requireErrorIs(t, err, reeve.ErrNotFound, "DROP")
		err = s.DeleteSecret(ctx, p.ID, "DROP")
		requireErrorIs(t, err, reeve.ErrNotFound, "DROP")
		list, err := s.ListSecrets(ctx, p.ID)
		requireNoError(t, err, "ListSecrets")
		if len(list) != 1 || list[0].Name != "KEEP" {
			t.Errorf("after deleting DROP: secrets %+v, want only KEEP", list)
		}
	})
}
