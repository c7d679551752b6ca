//go:build !linux

package bpf

import (
	"context"
	"errors"
)

// Monitor is never loaded outside Linux; the type exists so that callers build everywhere.
type Monitor struct{}

// Open fails with an *UnavailableError: eBPF is a Linux kernel facility.
func Open(ctx context.Context, opts Options) (*Monitor, error) {
	return nil, &UnavailableError{Reason: "not Linux", Err: errors.ErrUnsupported}
}

// Events returns nil: a Monitor outside Linux never has events.
func (m *Monitor) Events() <-chan Event { return nil }

// MapErr says executable mappings are not watched.
func (m *Monitor) MapErr() error { return errors.ErrUnsupported }

// Watch fails: there is no kernel side.
func (m *Monitor) Watch(cgroupID uint64) error { return errors.ErrUnsupported }

// Unwatch fails: there is no kernel side.
func (m *Monitor) Unwatch(cgroupID uint64) error { return errors.ErrUnsupported }

// Lost is always 0.
func (m *Monitor) Lost() (uint64, error) { return 0, nil }

// Malformed is always 0.
func (m *Monitor) Malformed() uint64 { return 0 }

// Close does nothing.
func (m *Monitor) Close() error { return nil }
