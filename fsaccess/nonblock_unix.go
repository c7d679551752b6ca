//go:build !linux && !windows

package fsaccess

import "syscall"

// openNonblock makes an open of a FIFO return at once instead of waiting for a writer; O_NOCTTY keeps a terminal
// device from becoming the scanner's controlling terminal.
const openNonblock = syscall.O_NONBLOCK | syscall.O_NOCTTY
