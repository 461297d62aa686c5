package collect

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sungrow/sungrow/telemetry"
)

var bucketReadings = []byte("readings")

// Spool is the queue of readings on disk: every reading is committed (fsynced) before
// it is uploaded and removed only after the server took it, so kill -9 loses nothing
// that was put. Keys are bbolt's bucket sequence, big-endian, so a cursor walks the
// readings oldest first.
type Spool struct {
	db  *bolt.DB
	max int

	mu    sync.Mutex
	depth int
}

// SpooledReading is a reading in the spool with its key, to remove it after upload.
type SpooledReading struct {
	Key    uint64
	Sample telemetry.Sample
}

// OpenSpool opens (or creates) the spool file at path, keeping at most max readings.
// A directory path gets the file spool.db inside it.
func OpenSpool(path string, max int) (*Spool, error) {
	if max < 1 {
		return nil, fmt.Errorf("open spool: max %d: want at least 1", max)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "spool.db")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	// The timeout turns a second collector on the same spool into a clear error
	// instead of a wait forever on bbolt's file lock.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open spool %s: another collector holds it", path)
		}
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	s := &Spool{db: db, max: max}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketReadings)
		if err != nil {
			return err
		}
		s.depth = b.Stats().KeyN // once at open; kept current in memory after
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	return s, nil
}

// Put commits a reading and returns how many of the oldest were dropped to stay
// within the spool's maximum.
func (s *Spool) Put(sample telemetry.Sample) (dropped int, err error) {
	v, err := json.Marshal(sample)
	if err != nil {
		return 0, fmt.Errorf("spool reading: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReadings)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(key(seq), v); err != nil {
			return err
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil && s.depth+1-dropped > s.max; k, _ = c.Next() {
			if err := c.Delete(); err != nil {
				return err
			}
			dropped++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("spool reading: %w", err)
	}
	s.depth += 1 - dropped
	return dropped, nil
}

// Oldest returns up to n readings, oldest first.
func (s *Spool) Oldest(n int) ([]SpooledReading, error) {
	var out []SpooledReading
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketReadings).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			var r SpooledReading
			if err := json.Unmarshal(v, &r.Sample); err != nil {
				return fmt.Errorf("reading %d: %w", binary.BigEndian.Uint64(k), err)
			}
			r.Key = binary.BigEndian.Uint64(k)
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read spool: %w", err)
	}
	return out, nil
}

// Remove deletes delivered (or refused for good) readings.
func (s *Spool) Remove(rs []SpooledReading) error {
	if len(rs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReadings)
		removed = 0
		for _, r := range rs {
			k := key(r.Key)
			if b.Get(k) == nil {
				continue // dropped by spool-max meanwhile
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove from spool: %w", err)
	}
	s.depth -= removed
	return nil
}

// Depth is how many readings wait in the spool.
func (s *Spool) Depth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.depth
}

// OldestTime is the time of the oldest spooled reading; zero when the spool is empty.
func (s *Spool) OldestTime() time.Time {
	rs, err := s.Oldest(1)
	if err != nil || len(rs) == 0 {
		return time.Time{}
	}
	return rs[0].Sample.TS
}

// Close syncs and closes the file.
func (s *Spool) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}

func key(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
