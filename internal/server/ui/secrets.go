package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/spec"
)

type secretsData struct {
	Project string
	Secrets []secretRow
	Name    string // the create form's name, kept after a refusal (never the value)
}

type secretRow struct {
	Secret api.Secret
	UsedBy []string // the flows whose newest version's spec declares it
}

// secretsPage lists a project's secrets (names and times: the API never
// returns values) with the flows that declare them, and the forms to
// create, rotate and delete them. The API lets the same roles read and
// manage secrets, so a role that may not gets the API's refusal instead.
func (u *UI) secretsPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	switch r.URL.Query().Get("done") {
	case "created":
		v.Notice = "Secret " + r.URL.Query().Get("name") + " created."
	case "rotated":
		v.Notice = "Secret " + r.URL.Query().Get("name") + " rotated: runs that start from now on read the new value."
	case "deleted":
		v.Notice = "Secret " + r.URL.Query().Get("name") + " deleted."
	}
	return u.showSecrets(r, s, v, r.URL.Query().Get("project"))
}

func (u *UI) showSecrets(r *http.Request, s *session, v *view, project string) (string, error) {
	ctx := r.Context()
	v.Title = "Secrets"
	secrets, err := s.api.Secrets(ctx, project)
	if err != nil {
		return "", err
	}
	d := &secretsData{Project: project}
	v.Data = d
	used := map[string][]string{}
	if flows, err := s.api.Flows(ctx, project, ""); err == nil {
		for _, f := range flows {
			fd, err := s.api.Flow(ctx, f.ID)
			if err != nil || len(fd.Versions) == 0 {
				continue
			}
			sp, err := spec.Decode(fd.Versions[0].Spec)
			if err != nil {
				continue
			}
			for _, sec := range sp.Secrets {
				if !slices.Contains(used[sec.Name], f.Name) {
					used[sec.Name] = append(used[sec.Name], f.Name)
				}
			}
		}
	}
	slices.SortFunc(secrets, func(a, b api.Secret) int { return strings.Compare(a.Name, b.Name) })
	for _, sec := range secrets {
		names := used[sec.Name]
		slices.Sort(names)
		d.Secrets = append(d.Secrets, secretRow{Secret: sec, UsedBy: names})
	}
	return "secrets", nil
}

// secretsURL is the secrets page of project after an action.
func secretsURL(project, done, name string) string {
	q := url.Values{}
	if project != "" {
		q.Set("project", project)
	}
	q.Set("done", done)
	q.Set("name", name)
	return "/ui/secrets?" + q.Encode()
}

// secretRefused shows the secrets page with the API's refusal of an
// action; a role that may not manage secrets gets the refusal alone.
func (u *UI) secretRefused(r *http.Request, s *session, v *view, project string, err error) (string, error) {
	code := errs.CodeOf(err)
	if code != errs.CodeInvalid && code != errs.CodeConflict && code != errs.CodeNotFound {
		return "", err
	}
	name, perr := u.showSecrets(r, s, v, project)
	if perr != nil {
		return "", err
	}
	v.Status = statusOf(err)
	v.Error = err.Error()
	return name, nil
}

// createSecret creates a secret; a name that is taken is refused (rotate
// it instead), so a create never overwrites a value by mistake.
func (u *UI) createSecret(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	f := r.PostForm
	project, name, value := f.Get("project"), strings.TrimSpace(f.Get("name")), f.Get("value")
	fail := func(err error) (string, error) {
		page, perr := u.secretRefused(r, s, v, project, err)
		if d, ok := v.Data.(*secretsData); ok && perr == nil {
			d.Name = name
		}
		return page, perr
	}
	if name == "" {
		return fail(errs.Errorf(errs.CodeInvalid, "give the secret a name"))
	}
	if value == "" {
		return fail(errs.Errorf(errs.CodeInvalid, "give secret %q a value", name))
	}
	existing, err := s.api.Secrets(r.Context(), project)
	if err != nil {
		return "", err
	}
	if slices.ContainsFunc(existing, func(sec api.Secret) bool { return sec.Name == name }) {
		return fail(errs.Errorf(errs.CodeConflict, "secret %q already exists: rotate it to change its value", name))
	}
	if _, err := s.api.SetSecret(r.Context(), project, name, value); err != nil {
		return fail(err)
	}
	http.Redirect(w, r, secretsURL(project, "created", name), http.StatusSeeOther)
	return "", nil
}

// rotateSecret gives an existing secret a new value.
func (u *UI) rotateSecret(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	project, name, value := r.PostForm.Get("project"), r.PathValue("name"), r.PostForm.Get("value")
	if value == "" {
		return u.secretRefused(r, s, v, project, errs.Errorf(errs.CodeInvalid, "give secret %q a new value", name))
	}
	existing, err := s.api.Secrets(r.Context(), project)
	if err != nil {
		return "", err
	}
	if !slices.ContainsFunc(existing, func(sec api.Secret) bool { return sec.Name == name }) {
		return u.secretRefused(r, s, v, project, errs.Errorf(errs.CodeNotFound, "there is no secret %q to rotate", name))
	}
	if _, err := s.api.SetSecret(r.Context(), project, name, value); err != nil {
		return u.secretRefused(r, s, v, project, err)
	}
	http.Redirect(w, r, secretsURL(project, "rotated", name), http.StatusSeeOther)
	return "", nil
}

// deleteSecret deletes a secret.
func (u *UI) deleteSecret(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	project, name := r.PostForm.Get("project"), r.PathValue("name")
	if err := s.api.DeleteSecret(r.Context(), project, name); err != nil {
		return u.secretRefused(r, s, v, project, err)
	}
	http.Redirect(w, r, secretsURL(project, "deleted", name), http.StatusSeeOther)
	return "", nil
}
