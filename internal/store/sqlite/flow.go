package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// CreateProject creates a project; a taken name is ErrConflict.
func (s *Store) CreateProject(ctx context.Context, p store.Project) (store.Project, error) {
	if p.Name == "" {
		return store.Project{}, fmt.Errorf("create project: %w", invalid("a project needs a name"))
	}
	id, err := newID()
	if err != nil {
		return store.Project{}, fmt.Errorf("create project %q: %w", p.Name, err)
	}
	out := store.Project{ID: id, Name: p.Name, Description: p.Description, CreatedAt: s.clock()}
	_, err = s.write.ExecContext(ctx,
		`INSERT INTO projects (id, name, description, created_at) VALUES (?, ?, ?, ?)`,
		out.ID, out.Name, out.Description, micros(out.CreatedAt))
	if isConstraint(err) {
		return store.Project{}, fmt.Errorf("create project: %w",
			reeve.Errorf(reeve.CodeConflict, "a project named %q exists already: choose another name", p.Name))
	}
	if err != nil {
		return store.Project{}, fmt.Errorf("create project %q: %w", p.Name, dbErr(err))
	}
	return out, nil
}

const projectCols = `id, name, description, created_at`

func scanProject(sc interface{ Scan(...any) error }) (store.Project, error) {
	var p store.Project
	var created int64
	if err := sc.Scan(&p.ID, &p.Name, &p.Description, &created); err != nil {
		return store.Project{}, err
	}
	p.CreatedAt = fromMicros(created)
	return p, nil
}

// GetProject returns a project by name, or ErrNotFound.
func (s *Store) GetProject(ctx context.Context, name string) (store.Project, error) {
	p, err := scanProject(s.read.QueryRowContext(ctx, `SELECT `+projectCols+` FROM projects WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Project{}, fmt.Errorf("get project: %w", notFound("project", name))
	}
	if err != nil {
		return store.Project{}, fmt.Errorf("get project %q: %w", name, dbErr(err))
	}
	return p, nil
}

// ListProjects returns every project, by name.
func (s *Store) ListProjects(ctx context.Context) ([]store.Project, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+projectCols+` FROM projects ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", dbErr(err))
	}
	out, err := collect(rows, scanProject)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", dbErr(err))
	}
	return out, nil
}

// projectID returns the ID of the project named name, or ErrNotFound.
func projectID(ctx context.Context, q queryer, name string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM projects WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("project", name)
	}
	if err != nil {
		return "", dbErr(err)
	}
	return id, nil
}

// RegisterFlow records a flow version in one transaction; see store.Store.
func (s *Store) RegisterFlow(ctx context.Context, r store.Registration) (store.FlowVersion, bool, error) {
	enc, err := store.CheckRegistration(r)
	if err != nil {
		return store.FlowVersion{}, false, fmt.Errorf("register flow: %w", err)
	}
	var (
		out     store.FlowVersion
		created bool
	)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		pid, err := projectID(ctx, tx, r.Project)
		if err != nil {
			return err
		}
		now := s.clock()
		var flowID string
		var latest int
		err = tx.QueryRowContext(ctx, `SELECT id, latest_version FROM flows WHERE project_id = ? AND name = ?`,
			pid, r.Flow).Scan(&flowID, &latest)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if flowID, err = newID(); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO flows (id, project_id, name, latest_version, created_at, updated_at) VALUES (?, ?, ?, 0, ?, ?)`,
				flowID, pid, r.Flow, micros(now), micros(now)); err != nil {
				return dbErr(err)
			}
		case err != nil:
			return dbErr(err)
		}
		if latest > 0 {
			var hash, storage, labels, runConfig string
			err := tx.QueryRowContext(ctx,
				`SELECT spec_hash, storage, labels, run_config FROM flow_versions WHERE flow_id = ? AND version = ?`,
				flowID, latest).Scan(&hash, &storage, &labels, &runConfig)
			if err != nil {
				return dbErr(err)
			}
			if hash == r.SpecHash && storage == enc.Storage && labels == enc.Labels && runConfig == enc.RunConfig {
				out, err = scanFlowVersion(tx.QueryRowContext(ctx,
					`SELECT `+flowVersionCols+` FROM flow_versions WHERE flow_id = ? AND version = ?`, flowID, latest))
				return dbErr(err)
			}
		}
		id, err := newID()
		if err != nil {
			return err
		}
		next := latest + 1
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO flow_versions (id, flow_id, version, spec_hash, spec, storage, labels, run_config, archived, created_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)`,
			id, flowID, next, r.SpecHash, enc.Spec, enc.Storage, enc.Labels, enc.RunConfig, micros(now)); err != nil {
			return dbErr(err)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE flow_versions SET archived = 1 WHERE flow_id = ? AND version < ? AND archived = 0`,
			flowID, next); err != nil {
			return dbErr(err)
		}
		// The scheduler makes these runs anew for the new version. Their
		// history, task runs, logs and tokens go with them (ON DELETE
		// CASCADE).
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM flow_runs
			 WHERE flow_id = ? AND flow_version_id <> ? AND schedule_id <> '' AND state = ?`,
			flowID, id, state.Scheduled.String()); err != nil {
			return dbErr(err)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE flows SET latest_version = ?, updated_at = ? WHERE id = ?`, next, micros(now), flowID); err != nil {
			return dbErr(err)
		}
		out, err = scanFlowVersion(tx.QueryRowContext(ctx,
			`SELECT `+flowVersionCols+` FROM flow_versions WHERE id = ?`, id))
		created = true
		return dbErr(err)
	})
	if err != nil {
		return store.FlowVersion{}, false, fmt.Errorf("register flow %q in project %q: %w", r.Flow, r.Project, err)
	}
	return out, created, nil
}

const flowCols = `f.id, f.project_id, f.name, f.latest_version, f.created_at, f.updated_at`

func scanFlow(sc interface{ Scan(...any) error }) (store.Flow, error) {
	var f store.Flow
	var created, updated int64
	if err := sc.Scan(&f.ID, &f.ProjectID, &f.Name, &f.LatestVersion, &created, &updated); err != nil {
		return store.Flow{}, err
	}
	f.CreatedAt, f.UpdatedAt = fromMicros(created), fromMicros(updated)
	return f, nil
}

// GetFlow returns a flow by project and name, or ErrNotFound.
func (s *Store) GetFlow(ctx context.Context, project, name string) (store.Flow, error) {
	f, err := scanFlow(s.read.QueryRowContext(ctx,
		`SELECT `+flowCols+` FROM flows f JOIN projects p ON p.id = f.project_id WHERE p.name = ? AND f.name = ?`,
		project, name))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := projectID(ctx, s.read, project); err != nil {
			return store.Flow{}, fmt.Errorf("get flow %q: %w", name, err)
		}
		return store.Flow{}, fmt.Errorf("get flow: %w",
			reeve.Errorf(reeve.CodeNotFound, "flow %q not found in project %q", name, project))
	}
	if err != nil {
		return store.Flow{}, fmt.Errorf("get flow %q in project %q: %w", name, project, dbErr(err))
	}
	return f, nil
}

// ListFlows returns a project's flows, by name.
func (s *Store) ListFlows(ctx context.Context, project string) ([]store.Flow, error) {
	pid, err := projectID(ctx, s.read, project)
	if err != nil {
		return nil, fmt.Errorf("list flows: %w", err)
	}
	rows, err := s.read.QueryContext(ctx,
		`SELECT `+flowCols+` FROM flows f WHERE f.project_id = ? ORDER BY f.name`, pid)
	if err != nil {
		return nil, fmt.Errorf("list flows of project %q: %w", project, dbErr(err))
	}
	out, err := collect(rows, scanFlow)
	if err != nil {
		return nil, fmt.Errorf("list flows of project %q: %w", project, dbErr(err))
	}
	return out, nil
}

const flowVersionCols = `id, flow_id, version, spec_hash, spec, storage, labels, run_config, archived, created_at`

func scanFlowVersion(sc interface{ Scan(...any) error }) (store.FlowVersion, error) {
	var (
		v                          store.FlowVersion
		spec, storage, labels, cfg string
		created                    int64
	)
	if err := sc.Scan(&v.ID, &v.FlowID, &v.Version, &v.SpecHash, &spec, &storage, &labels, &cfg, &v.Archived, &created); err != nil {
		return store.FlowVersion{}, err
	}
	v.Spec = json.RawMessage(spec)
	v.CreatedAt = fromMicros(created)
	if err := json.Unmarshal([]byte(storage), &v.Storage); err != nil {
		return store.FlowVersion{}, fmt.Errorf("flow version %s: storage: %w", v.ID, err)
	}
	if err := json.Unmarshal([]byte(labels), &v.Labels); err != nil {
		return store.FlowVersion{}, fmt.Errorf("flow version %s: labels: %w", v.ID, err)
	}
	if err := json.Unmarshal([]byte(cfg), &v.RunConfig); err != nil {
		return store.FlowVersion{}, fmt.Errorf("flow version %s: run config: %w", v.ID, err)
	}
	return v, nil
}

// GetFlowVersion returns a flow version by ID, or ErrNotFound.
func (s *Store) GetFlowVersion(ctx context.Context, id string) (store.FlowVersion, error) {
	v, err := scanFlowVersion(s.read.QueryRowContext(ctx,
		`SELECT `+flowVersionCols+` FROM flow_versions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.FlowVersion{}, fmt.Errorf("get flow version: %w", notFound("flow version", id))
	}
	if err != nil {
		return store.FlowVersion{}, fmt.Errorf("get flow version %q: %w", id, dbErr(err))
	}
	return v, nil
}

// ListFlowVersions returns a flow's versions, newest first.
func (s *Store) ListFlowVersions(ctx context.Context, flowID string) ([]store.FlowVersion, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT `+flowVersionCols+` FROM flow_versions WHERE flow_id = ? ORDER BY version DESC`, flowID)
	if err != nil {
		return nil, fmt.Errorf("list versions of flow %q: %w", flowID, dbErr(err))
	}
	out, err := collect(rows, scanFlowVersion)
	if err != nil {
		return nil, fmt.Errorf("list versions of flow %q: %w", flowID, dbErr(err))
	}
	if len(out) == 0 {
		// A flow always has a version: no rows means no flow.
		return nil, fmt.Errorf("list flow versions: %w", notFound("flow", flowID))
	}
	return out, nil
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
