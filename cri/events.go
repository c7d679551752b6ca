package cri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/typeurl/v2"
)

// Watcher turns containerd's own event stream into "this container changed" notices. It listens on containerd's
// API rather than the CRI's GetContainerEvents: that stream is missing on containerd 1.6, and on 1.7 it hands each
// event to a single subscriber, so a scanner subscribing there would steal kubelet's events.
//
// Events can be lost (containerd restarts, the stream breaks); Watch reconnects with backoff and calls resync after
// every (re)connect, so the caller reconciles with a full list and misses nothing for long.
type Watcher struct {
	// Address is containerd's API socket (the one that also serves the CRI).
	Address string
	// Namespace is the containerd namespace the CRI keeps its containers in ("k8s.io").
	Namespace string
	Log       *slog.Logger
	// MaxBackoff caps the wait between reconnect attempts (default 10s).
	MaxBackoff time.Duration
}

// Watch blocks until ctx is done. changed gets the ID of every container created, updated, deleted, started,
// exited, paused or resumed (sandbox IDs included: the caller ignores IDs the CRI does not list as containers).
// resync is called once the subscription is established, the first time and after each reconnect.
func (w *Watcher) Watch(ctx context.Context, changed func(id string), resync func()) error {
	backoff := 250 * time.Millisecond
	maxBackoff := w.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 10 * time.Second
	}
	for {
		connected, err := w.watchOnce(ctx, changed, resync)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if connected {
			backoff = 250 * time.Millisecond
		}
		w.logger().Warn("containerd event stream lost; reconnecting", "address", w.Address, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// watchOnce subscribes once and forwards events until the stream fails. connected reports whether the
// subscription was up at some point, so a flapping containerd does not reset the backoff.
func (w *Watcher) watchOnce(ctx context.Context, changed func(string), resync func()) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	client, err := containerd.New(w.Address, containerd.WithDefaultNamespace(w.Namespace), containerd.WithTimeout(5*time.Second))
	if err != nil {
		return false, fmt.Errorf("connect to containerd at %s: %w", w.Address, err)
	}
	defer client.Close()
	// Subscribe does not fail until the first receive; ask for the server version first so an unreachable
	// containerd is an error here, not a silent stream that never delivers.
	if _, err := client.Version(ctx); err != nil {
		return false, fmt.Errorf("containerd at %s: %w", w.Address, err)
	}
	filter := fmt.Sprintf(`namespace==%s,topic~="^/(tasks|containers)/"`, w.Namespace)
	events, errs := client.Subscribe(ctx, filter)
	resync()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-errs:
			if err == nil {
				err = errors.New("event stream closed")
			}
			return true, err
		case env, ok := <-events:
			if !ok {
				return true, errors.New("event stream closed")
			}
			if env.Event == nil {
				continue
			}
			id, err := containerOf(env.Event)
			if err != nil {
				// An event we cannot read is a change we cannot place: reconcile everything rather than guess.
				w.logger().Debug("unreadable containerd event; resyncing", "topic", env.Topic, "err", err)
				resync()
				continue
			}
			if id != "" {
				changed(id)
			}
		}
	}
}

// containerOf is the container an event is about, or "" for events that change no container's files or state.
func containerOf(a typeurl.Any) (string, error) {
	v, err := typeurl.UnmarshalAny(a)
	if err != nil {
		return "", fmt.Errorf("decode event %s: %w", a.GetTypeUrl(), err)
	}
	switch e := v.(type) {
	case *apievents.ContainerCreate:
		return e.ID, nil
	case *apievents.ContainerUpdate:
		return e.ID, nil
	case *apievents.ContainerDelete:
		return e.ID, nil
	case *apievents.TaskCreate:
		return e.ContainerID, nil
	case *apievents.TaskStart:
		return e.ContainerID, nil
	case *apievents.TaskExit:
		return e.ContainerID, nil
	case *apievents.TaskDelete:
		return e.ContainerID, nil
	case *apievents.TaskPaused:
		return e.ContainerID, nil
	case *apievents.TaskResumed:
		return e.ContainerID, nil
	}
	// TaskOOM, TaskExecAdded, TaskIO, checkpoints: the container's root is unchanged.
	return "", nil
}

func (w *Watcher) logger() *slog.Logger {
	if w.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Log
}
