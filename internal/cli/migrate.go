package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

// copyStore is a store that store.Copy can read and write: both of ours.
type copyStore interface {
	store.Store
	store.Source
	store.Target
}

func (c *CLI) migrateStoreCommand() *cobra.Command {
	var (
		from, to string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "migrate-store --from DATABASE_URL --to DATABASE_URL",
		Short: "Copy every record of one database into another, empty one (e.g. SQLite to PostgreSQL)",
		Long: "Copy every record of the server's database (--from) into another, empty database (--to),\n" +
			"in one transaction: all or nothing. IDs, states, logs, tokens and secrets are copied as they\n" +
			"are, so agents, tokens and log paging go on working against the new database.\n\n" +
			"Stop the server first: what it writes during the copy is not copied. Secrets stay\n" +
			"encrypted: start the new server with the same secret key (the key file in the data\n" +
			"directory, or REEVE_SECRET_KEY). Databases are URLs as for --database-url; keep a\n" +
			"PostgreSQL password out of the command line with REEVE_MIGRATE_TO or PGPASSWORD.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return usagef("give both databases: --from DATABASE_URL --to DATABASE_URL (%s)", databaseForms)
			}
			src, err := parseDatabaseURL("--from", from, "")
			if err != nil {
				return err
			}
			dst, err := parseDatabaseURL("--to", to, "")
			if err != nil {
				return err
			}
			if src == dst {
				return usagef("--from and --to are the same database: give the database to copy into as --to")
			}
			return c.migrateStore(cmd.Context(), src, dst, asJSON)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "the database to copy: sqlite:///abs/path.db, sqlite://relative/path.db or postgres://...")
	fl.StringVar(&to, "to", "", "the empty database to copy into (created if it is a new SQLite file)")
	fl.BoolVar(&asJSON, "json", false, "print the rows copied per table as JSON")
	bindEnv(fl, "from", "REEVE_MIGRATE_FROM")
	bindEnv(fl, "to", "REEVE_MIGRATE_TO")
	return cmd
}

func (c *CLI) migrateStore(ctx context.Context, from, to database, asJSON bool) (err error) {
	open := func(db database, what string) (copyStore, error) {
		st, err := openStore(ctx, db)
		if err != nil {
			if reeve.CodeOf(err) == reeve.CodeInvalid {
				return nil, usageError{fmt.Errorf("%s: %w", what, err)}
			}
			return nil, fmt.Errorf("open the %s database (%s): %w", what, db, err)
		}
		cs, ok := st.(copyStore)
		if !ok {
			st.Close()
			return nil, fmt.Errorf("the %s database (%s) cannot be copied: its store has no Dump and Load", what, db)
		}
		return cs, nil
	}
	src, err := open(from, "source")
	if err != nil {
		return err
	}
	defer closeStore(src, &err)
	dst, err := open(to, "target")
	if err != nil {
		return err
	}
	defer closeStore(dst, &err)

	if !asJSON {
		fmt.Fprintf(c.stderr, "Copying %s into %s\n", from, to)
	}
	progress := func(table string, done, total int64) {
		if !asJSON && done == total {
			fmt.Fprintf(c.stderr, "  %-14s %d rows\n", table, total)
		}
	}
	counts, err := store.Copy(ctx, src, dst, progress)
	if err != nil {
		if errors.Is(err, reeve.ErrConflict) {
			return fmt.Errorf("copy into %s: %w (copy into a new, empty database)", to, err)
		}
		return fmt.Errorf("copy %s into %s: %w", from, to, err)
	}
	if asJSON {
		return printJSON(c.stdout, map[string]any{"from": from.String(), "to": to.String(), "tables": counts})
	}
	var rows int64
	for _, tc := range counts {
		rows += tc.Rows
	}
	fmt.Fprintf(c.stdout, "Copied %d rows in %d tables from %s into %s.\n", rows, len(counts), from, to)
	fmt.Fprintln(c.stdout, "Start the server on the new database with the same secret key: secrets were copied encrypted.")
	return nil
}

// closeStore closes st, keeping the first error in *err.
func closeStore(st store.Store, err *error) {
	if cerr := st.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close the store: %w", cerr)
	}
}
