package vuln

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"
)

// RefreshJitter spreads a fleet's updates: every wait is its nominal length ± this fraction, so a thousand nodes
// started by one rollout do not ask the mirror for the same archives in the same second, forever.
const RefreshJitter = 0.1

// Default retry waits after a failed update: the first retry comes soon (a mirror pod still starting, a network
// blip), later ones back off to at most an hour or the refresh interval, whichever is shorter.
const (
	defaultRetryMin = time.Minute
	retryMax        = time.Hour
)

// Refresher keeps a database current from its feeds while a daemon runs, with Update's rules (conditional requests,
// the old database kept on any failure, a rename to swap). Without a database it fetches at once; with one it
// waits until the feeds were last fetched Every ago. A failure is retried with a backoff, never faster than
// RetryMin, so a broken mirror costs a request a minute at worst.
type Refresher struct {
	Dir    string
	Update UpdateOptions
	// Every is the time between updates. Zero only fetches when there is no database, retrying until one is built.
	Every time.Duration
	// RetryMin is the first wait after a failure (one minute when zero).
	RetryMin time.Duration
	// OnResult is told the outcome of every attempt (not of one cut short by ctx): the daemon counts failures, and
	// on a changed database reloads it and re-matches every container.
	OnResult func(ctx context.Context, res UpdateResult, err error)
	Log      *slog.Logger
	// Rand returns a number in [0, 1) for the jitter; math/rand/v2's Float64 when nil (tests pin it).
	Rand func() float64
	// Now is the clock the age of the feeds is read with; time.Now when nil.
	Now func() time.Time
}

// Run updates until ctx ends (or, with Every zero, until a database exists).
func (r *Refresher) Run(ctx context.Context) {
	log := r.logger()
	wait, ok := r.firstWait()
	if !ok {
		log.Info("vulnerability database present and refresh disabled; not fetching", "db", r.Dir)
		return
	}
	retry := r.firstRetry()
	for {
		if wait > 0 {
			log.Debug("next vulnerability database update", "in", wait.Round(time.Second))
		}
		if !sleep(ctx, wait) {
			return
		}
		log.Info("updating the vulnerability database", "urls", r.Update.URLs)
		res, err := Update(ctx, r.Dir, r.Update)
		if ctx.Err() != nil {
			return // shutting down: not a failure of the feed
		}
		if r.OnResult != nil {
			r.OnResult(ctx, res, err)
		}
		if err != nil {
			wait = r.jitter(retry)
			log.Warn("vulnerability database update failed; the database in use (if any) stays", "err", err,
				"retryIn", wait.Round(time.Second))
			retry = min(2*retry, r.maxRetry())
			continue
		}
		retry = r.firstRetry()
		log.Info("vulnerability database update done", "changed", res.Changed, "notModified", len(res.NotModified),
			"advisories", res.Info.Advisories, "built", res.Info.Built)
		if r.Every <= 0 {
			return
		}
		wait = r.jitter(r.Every)
	}
}

// firstWait is how long to wait before the first update, and false when there is none to make (a database exists
// and Every is zero). The feeds' last fetch is read from the database, so a restarted daemon does not fetch again
// what it fetched an hour ago, and one whose database came from other sources fetches at once.
func (r *Refresher) firstWait() (time.Duration, bool) {
	db, err := Open(r.Dir)
	if err != nil {
		return 0, true // no database, or one that does not open: build one now
	}
	info := db.Info()
	db.Close()
	if r.Every <= 0 {
		return 0, false
	}
	last, ok := lastFetched(info, r.Update.URLs)
	if !ok {
		return 0, true
	}
	return max(0, r.jitter(r.Every)-r.now().Sub(last)), true
}

// lastFetched is the oldest fetch time among the database's sources for urls; false when one of urls is not among
// them (the database was built from something else, or the URL list changed).
func lastFetched(info Info, urls []string) (time.Time, bool) {
	var oldest time.Time
	for _, u := range urls {
		i := slices.IndexFunc(info.Sources, func(s Source) bool { return s.Location == u })
		if i < 0 || info.Sources[i].Fetched.IsZero() {
			return time.Time{}, false
		}
		if f := info.Sources[i].Fetched; oldest.IsZero() || f.Before(oldest) {
			oldest = f
		}
	}
	return oldest, !oldest.IsZero()
}

func (r *Refresher) jitter(d time.Duration) time.Duration {
	f := rand.Float64
	if r.Rand != nil {
		f = r.Rand
	}
	return d + time.Duration(float64(d)*RefreshJitter*(2*f()-1))
}

func (r *Refresher) maxRetry() time.Duration {
	if r.Every > 0 {
		return min(retryMax, r.Every)
	}
	return retryMax
}

func (r *Refresher) firstRetry() time.Duration {
	d := r.RetryMin
	if d <= 0 {
		d = defaultRetryMin
	}
	return min(d, r.maxRetry())
}

func (r *Refresher) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Refresher) logger() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// sleep waits d or until ctx ends, and says whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
