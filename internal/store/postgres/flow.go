package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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
	tag, err := s.pool.Exec(ctx,
		`INSERT INTO projects (id, name, description, created_at) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (name) DO NOTHING`,
		out.ID, out.Name, out.Description, out.CreatedAt)
	if err != nil {
		return store.Project{}, fmt.Errorf("create project %q: %w", p.Name, dbErr(err))
	}
	if tag.RowsAffected() == 0 {
		return store.Project{}, fmt.Errorf("create project: %w",
			reeve.Errorf(reeve.CodeConflict, "a project named %q exists already: choose another name", p.Name))
	}
	return out, nil
}

const projectCols = `id, name, description, created_at`

func scanProject(row pgx.Row) (store.Project, error) {
	var p store.Project
	if err := row.Scan(&p.ID, &p.Name, &p.Description, &p.CreatedAt); err != nil {
		return store.Project{}, err
	}
	p.CreatedAt = p.CreatedAt.UTC()
	return p, nil
}

// GetProject returns a project by name, or ErrNotFound.
func (s *Store) GetProject(ctx context.Context, name string) (store.Project, error) {
	p, err := scanProject(s.pool.QueryRow(ctx, `SELECT `+projectCols+` FROM projects WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Project{}, fmt.Errorf("get project: %w", notFound("project", name))
	}
	if err != nil {
		return store.Project{}, fmt.Errorf("get project %q: %w", name, dbErr(err))
	}
	return p, nil
}

// ListProjects returns every project, by name.
func (s *Store) ListProjects(ctx context.Context) ([]store.Project, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+projectCols+` FROM projects ORDER BY name`)
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
	err := q.QueryRow(ctx, `SELECT id FROM projects WHERE name = $1`, name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", notFound("project", name)
	}
	if err != nil {
		return "", dbErr(err)
	}
	return id, nil
}

// sameRegistration reports whether the stored version v has the storage,
// labels and run configuration of enc. jsonb does not keep the text it was
// given, so both sides are compared as Go encodes them.
func sameRegistration(v store.FlowVersion, enc store.RegistrationColumns) bool {
	storage, err1 := json.Marshal(v.Storage)
	labels, err2 := store.EncodeLabels(v.Labels)
	runConfig, err3 := json.Marshal(v.RunConfig)
	return err1 == nil && err2 == nil && err3 == nil &&
		string(storage) == enc.Storage && labels == enc.Labels && string(runConfig) == enc.RunConfig
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
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		created = false
		pid, err := projectID(ctx, tx, r.Project)
		if err != nil {
			return err
		}
		now := s.clock()
		// The flow's row is locked until the end of the transaction, so
		// replicas registering the same flow add one version after the
		// other.
		lock := func() (id string, latest int, err error) {
			err = tx.QueryRow(ctx, `SELECT id, latest_version FROM flows WHERE project_id = $1 AND name = $2 FOR UPDATE`,
				pid, r.Flow).Scan(&id, &latest)
			return id, latest, err
		}
		flowID, latest, err := lock()
		if errors.Is(err, pgx.ErrNoRows) {
			id, idErr := newID()
			if idErr != nil {
				return idErr
			}
			// Another replica may create the flow meanwhile: then this
			// insert waits for it and does nothing, and lock finds its row.
			if _, err := tx.Exec(ctx,
				`INSERT INTO flows (id, project_id, name, latest_version, created_at, updated_at) VALUES ($1, $2, $3, 0, $4, $4)
				 ON CONFLICT (project_id, name) DO NOTHING`,
				id, pid, r.Flow, now); err != nil {
				return dbErr(err)
			}
			flowID, latest, err = lock()
		}
		if err != nil {
			return dbErr(err)
		}
		if latest > 0 {
			v, err := scanFlowVersion(tx.QueryRow(ctx,
				`SELECT `+flowVersionCols+` FROM flow_versions WHERE flow_id = $1 AND version = $2`, flowID, latest))
			if err != nil {
				return dbErr(err)
			}
			if v.SpecHash == r.SpecHash && sameRegistration(v, enc) {
				out = v
				return nil
			}
		}
		id, err := newID()
		if err != nil {
			return err
		}
		next := latest + 1
		out, err = scanFlowVersion(tx.QueryRow(ctx,
			`INSERT INTO flow_versions (id, flow_id, version, spec_hash, spec, storage, labels, run_config, archived, created_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, false, $9)
			 RETURNING `+flowVersionCols,
			id, flowID, next, r.SpecHash, enc.Spec, enc.Storage, enc.Labels, enc.RunConfig, now))
		if err != nil {
			return dbErr(err)
		}
		if _, err := tx.Exec(ctx,
			`UPDATE flow_versions SET archived = true WHERE flow_id = $1 AND version < $2 AND NOT archived`,
			flowID, next); err != nil {
			return dbErr(err)
		}
		// The scheduler makes these runs anew for the new version.
		if _, err := deleteRuns(ctx, tx,
			`flow_id = $1 AND flow_version_id <> $2 AND schedule_id <> '' AND state = $3`,
			flowID, out.ID, state.Scheduled.String()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx,
			`UPDATE flows SET latest_version = $1, updated_at = $2 WHERE id = $3`, next, now, flowID); err != nil {
			return dbErr(err)
		}
		created = true
		return nil
	})
	if err != nil {
		return store.FlowVersion{}, false, fmt.Errorf("register flow %q in project %q: %w", r.Flow, r.Project, err)
	}
	return out, created, nil
}

const flowCols = `f.id, f.project_id, f.name, f.latest_version, f.created_at, f.updated_at`

func scanFlow(row pgx.Row) (store.Flow, error) {
	var f store.Flow
	if err := row.Scan(&f.ID, &f.ProjectID, &f.Name, &f.LatestVersion, &f.CreatedAt, &f.UpdatedAt); err != nil {
		return store.Flow{}, err
	}
	f.CreatedAt, f.UpdatedAt = f.CreatedAt.UTC(), f.UpdatedAt.UTC()
	return f, nil
}

// GetFlow returns a flow by project and name, or ErrNotFound.
func (s *Store) GetFlow(ctx context.Context, project, name string) (store.Flow, error) {
	f, err := scanFlow(s.pool.QueryRow(ctx,
		`SELECT `+flowCols+` FROM flows f JOIN projects p ON p.id = f.project_id WHERE p.name = $1 AND f.name = $2`,
		project, name))
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := projectID(ctx, s.pool, project); err != nil {
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
	pid, err := projectID(ctx, s.pool, project)
	if err != nil {
		return nil, fmt.Errorf("list flows: %w", err)
	}
	rows, err := s.pool.Query(ctx,
		`SELECT `+flowCols+` FROM flows f WHERE f.project_id = $1 ORDER BY f.name`, pid)
	if err != nil {
		return nil, fmt.Errorf("list flows of project %q: %w", project, dbErr(err))
	}
	out, err := collect(rows, scanFlow)
	if err != nil {
		return nil, fmt.Errorf("list flows of project %q: %w", project, dbErr(err))
	}
	return out, nil
}

const flowVersionCols = `id, flow_id, version, spec_hash, spec::text, storage, labels, run_config, archived, created_at`

func scanFlowVersion(row pgx.Row) (store.FlowVersion, error) {
	var (
		v    store.FlowVersion
		spec string
	)
	if err := row.Scan(&v.ID, &v.FlowID, &v.Version, &v.SpecHash, &spec, &v.Storage, &v.Labels, &v.RunConfig,
		&v.Archived, &v.CreatedAt); err != nil {
		return store.FlowVersion{}, err
	}
	v.Spec = json.RawMessage(spec)
	v.CreatedAt = v.CreatedAt.UTC()
	if v.Labels == nil {
		v.Labels = []string{} // as SQLite gives them: a JSON [] decodes to an empty slice
	}
	return v, nil
}

// GetFlowVersion returns a flow version by ID, or ErrNotFound.
func (s *Store) GetFlowVersion(ctx context.Context, id string) (store.FlowVersion, error) {
	v, err := scanFlowVersion(s.pool.QueryRow(ctx,
		`SELECT `+flowVersionCols+` FROM flow_versions WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.FlowVersion{}, fmt.Errorf("get flow version: %w", notFound("flow version", id))
	}
	if err != nil {
		return store.FlowVersion{}, fmt.Errorf("get flow version %q: %w", id, dbErr(err))
	}
	return v, nil
}

// ListFlowVersions returns a flow's versions, newest first.
func (s *Store) ListFlowVersions(ctx context.Context, flowID string) ([]store.FlowVersion, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+flowVersionCols+` FROM flow_versions WHERE flow_id = $1 ORDER BY version DESC`, flowID)
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

// collect scans every row with scan and closes rows. It returns an empty,
// non-nil slice when there are none.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
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
