package vuln

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ImportExisting adds every advisory of the database in dir to the build, with its sources and withdrawn count, so
// that `rootscan db import --append` extends a database instead of replacing it: the build is still a new file
// swapped in whole, and records imported after this call replace older ones with the same id only when they were
// modified later, as within one import. A directory without a database adds nothing; a database of another schema
// is an error (its records cannot be read as this rootscan's).
func (b *Builder) ImportExisting(ctx context.Context, dir string) (int, error) {
	db, err := Open(dir)
	if errors.Is(err, ErrNoDatabase) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("append to database: %w", err)
	}
	defer db.Close()
	n := 0
	err = db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAdv).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var a advisory
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("advisory %s: %w", k, err)
			}
			if _, err := b.addAdvisory(a); err != nil {
				return err
			}
			n++
			return nil
		})
	})
	if err != nil {
		return n, fmt.Errorf("append to database %s: %w", db.Path(), err)
	}
	info := db.Info()
	b.withdrawn += info.Withdrawn
	b.sources = append(b.sources, info.Sources...)
	return n, nil
}
