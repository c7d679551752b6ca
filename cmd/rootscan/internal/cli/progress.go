package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/rootscan/rootscan/internal/textsafe"
)

// progressDelay is how long a scan runs before the progress line appears: a scan of a directory or of a few small
// containers ends before anyone would read it.
const progressDelay = 500 * time.Millisecond

// progressLine draws "scanning 3/12 containers: shop/web-0/app" on one terminal line, redrawn in place, and clears
// it when the scan is done, so the output that follows starts on a clean line.
type progressLine struct {
	w       io.Writer
	mu      sync.Mutex
	done    int
	total   int
	current string
	line    string // last drawn, "" before the first draw
	stop    chan struct{}
	stopped chan struct{}
}

// newProgressLine returns nil (no progress) when w is not a terminal or quiet is set: a log file or a CI job's output
// must not fill with carriage returns.
func newProgressLine(w io.Writer, quiet bool) *progressLine {
	if quiet || !isTerminal(w) {
		return nil
	}
	return startProgress(w, progressDelay, 100*time.Millisecond)
}

func startProgress(w io.Writer, delay, every time.Duration) *progressLine {
	p := &progressLine{w: w, stop: make(chan struct{}), stopped: make(chan struct{})}
	go p.loop(delay, every)
	return p
}

func (p *progressLine) loop(delay, every time.Duration) {
	defer close(p.stopped)
	select {
	case <-p.stop:
		return
	case <-time.After(delay):
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p.draw()
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

// update is node.Scanner.Progress: a target started (current names it) or one ended (current is "").
func (p *progressLine) update(done, total int, current string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = done, total
	if current != "" {
		p.current = current
	}
}

func (p *progressLine) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total == 0 {
		return
	}
	noun := "containers"
	if p.total == 1 {
		noun = "target"
	}
	head := fmt.Sprintf("scanning %d/%d %s: ", p.done, p.total, noun)
	line := head + clipFront(textsafe.Escape(p.current), max(progressWidth-len(head), 10))
	if line == p.line {
		return // redraw only what changed: a slow terminal (a serial console, ssh) pays for every byte
	}
	fmt.Fprintf(p.w, "\r%s\033[K", line)
	p.line = line
}

// progressWidth keeps the line within an 80-column terminal: a line that wraps cannot be redrawn in place.
const progressWidth = 79

// close stops drawing and clears the line if it was drawn.
func (p *progressLine) close() {
	close(p.stop)
	<-p.stopped
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.line != "" {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// isTerminal says whether w is a terminal (a character device with a line discipline, not a pipe or file).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// clipFront keeps the last n runes of s, marking the cut: the end of a long target name (the container) tells
// targets apart.
func clipFront(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}
