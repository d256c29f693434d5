package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/reevehq/reeve/api"
)

// TestSecretsPage: a developer creates, rotates and deletes a secret
// through the page's forms; the value is never in any page; a form
// without the CSRF token is refused; the flows that declare a secret are
// shown as its users.
func TestSecretsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.flow("etl", `"secrets":[{"name":"DB_PASSWORD"}]`)
	const first, second = "hunter2-first-value", "correct-horse-second"
	u := e.user()
	u.signIn(e.token("developer"))
	var pages []page
	get := func(path string) page {
		t.Helper()
		p := u.mustGet(path)
		pages = append(pages, p)
		return p
	}
	post := func(path string, f url.Values) page {
		t.Helper()
		p := u.post(path, f)
		pages = append(pages, p)
		return p
	}
	names := func() []string {
		t.Helper()
		ss, err := e.api.Secrets(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}

	p := get("/ui/secrets")
	p.contains(t, `id="create-secret"`, `id="secret-value" name="value" type="password"`, `href="/ui/secrets" aria-current="page"`)
	csrf := p.csrf(t)

	// Without the CSRF token nothing is created.
	if p := post("/ui/secrets", url.Values{"name": {"DB_PASSWORD"}, "value": {first}}); p.status != http.StatusForbidden {
		t.Errorf("create without a CSRF token = %d, want 403", p.status)
	}
	if p := post("/ui/secrets", url.Values{"csrf": {"x" + csrf}, "name": {"DB_PASSWORD"}, "value": {first}}); p.status != http.StatusForbidden {
		t.Errorf("create with a wrong CSRF token = %d, want 403", p.status)
	}
	if n := names(); len(n) != 0 {
		t.Fatalf("a refused form created secrets %v", n)
	}

	// Create.
	p = post("/ui/secrets", url.Values{"csrf": {csrf}, "name": {"DB_PASSWORD"}, "value": {first}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/ui/secrets?") {
		t.Fatalf("create = %d to %q, want 303 to the secrets page:\n%s", p.status, p.location(), p.body)
	}
	if n := names(); !slices.Equal(n, []string{"DB_PASSWORD"}) {
		t.Fatalf("after create the secrets are %v", n)
	}
	p = get(p.location())
	p.contains(t, "Secret DB_PASSWORD created.", `<tr data-secret="DB_PASSWORD">`, `action="/ui/secrets/DB_PASSWORD/rotate"`, `href="/ui/runs?flow=etl">etl</a>`)
	before, _ := e.api.Secrets(ctx, "")

	// Creating it again is refused (rotate instead); the name is kept, the value is not.
	p = post("/ui/secrets", url.Values{"csrf": {csrf}, "name": {"DB_PASSWORD"}, "value": {second}})
	if p.status != http.StatusConflict {
		t.Errorf("create of an existing secret = %d, want 409", p.status)
	}
	p.contains(t, "already exists", `id="secret-name" name="name" value="DB_PASSWORD"`)

	// Rotate.
	if p := post("/ui/secrets/DB_PASSWORD/rotate", url.Values{"value": {second}}); p.status != http.StatusForbidden {
		t.Errorf("rotate without a CSRF token = %d, want 403", p.status)
	}
	p = post("/ui/secrets/DB_PASSWORD/rotate", url.Values{"csrf": {csrf}, "value": {second}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("rotate = %d, want 303:\n%s", p.status, p.body)
	}
	get(p.location()).contains(t, "Secret DB_PASSWORD rotated")
	after, _ := e.api.Secrets(ctx, "")
	if len(after) != 1 || !after[0].UpdatedAt.After(before[0].UpdatedAt) {
		t.Errorf("rotate did not update the secret: before %+v, after %+v", before, after)
	}
	if p := post("/ui/secrets/NOPE/rotate", url.Values{"csrf": {csrf}, "value": {second}}); p.status != http.StatusNotFound {
		t.Errorf("rotate of a missing secret = %d, want 404", p.status)
	}

	// Delete.
	if p := post("/ui/secrets/DB_PASSWORD/delete", url.Values{}); p.status != http.StatusForbidden {
		t.Errorf("delete without a CSRF token = %d, want 403", p.status)
	}
	if n := names(); len(n) != 1 {
		t.Fatalf("a refused delete deleted: %v", n)
	}
	p = post("/ui/secrets/DB_PASSWORD/delete", url.Values{"csrf": {csrf}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("delete = %d, want 303:\n%s", p.status, p.body)
	}
	get(p.location()).contains(t, "Secret DB_PASSWORD deleted.", `id="no-secrets"`)
	if n := names(); len(n) != 0 {
		t.Errorf("after delete the secrets are %v", n)
	}

	// The value was never in any page.
	for _, p := range pages {
		p.lacks(t, first, second)
	}
}

// TestSecretsRoles: an agent token, which the API does not let read or
// manage secrets, gets the API's refusal and no forms, and a forged form
// is refused with the API's message (403), not a server error.
func TestSecretsRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.api.SetSecret(context.Background(), "", "API_KEY", "value-of-the-key"); err != nil {
		t.Fatal(err)
	}
	u := e.user()
	csrf := u.signIn(e.token(api.RoleAgent)).csrf(t)
	p := u.get("/ui/secrets")
	if p.status != http.StatusForbidden {
		t.Errorf("an agent's GET /ui/secrets = %d, want 403", p.status)
	}
	p.contains(t, "may not GET /api/v1/secrets")
	p.lacks(t, `action="/ui/secrets`, "value-of-the-key")
	for path, f := range map[string]url.Values{
		"/ui/secrets":                {"csrf": {csrf}, "name": {"NEW"}, "value": {"v"}},
		"/ui/secrets/API_KEY/rotate": {"csrf": {csrf}, "value": {"v2"}},
		"/ui/secrets/API_KEY/delete": {"csrf": {csrf}},
	} {
		p := u.post(path, f)
		if p.status != http.StatusForbidden {
			t.Errorf("an agent's forged POST %s = %d, want 403:\n%s", path, p.status, p.body)
		}
		p.contains(t, "a agent token may not")
		p.lacks(t, `action="/ui/secrets`)
	}
	ss, err := e.api.Secrets(context.Background(), "")
	if err != nil || len(ss) != 1 || !ss[0].UpdatedAt.Equal(ss[0].CreatedAt) {
		t.Errorf("after the agent's forged forms the secrets are %+v, %v", ss, err)
	}
}
