// Package progress draws progress bars with a rate and an ETA for long
// loops (training epochs, evaluation, data checks).
//
// On a terminal the bar is one line redrawn in place (carriage return and
// erase-to-end-of-line, at most 10 times a second). When the writer is not a
// terminal (a file, a pipe, CI logs) it prints plain lines instead, at most
// one per Options.Interval plus one at the end, so that logs stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// IsTerminal reports whether w is a terminal: an *os.File that is a
// character device other than the null device, with TERM not "dumb".
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(st, null) {
		return false
	}
	return true
}

// Mode chooses how a Bar draws.
type Mode int

const (
	Auto     Mode = iota // Redraw on a terminal (IsTerminal), else Lines
	Redraw               // one line redrawn in place
	Lines                // plain lines, at most one per Interval
	Silent               // nothing
	numModes             // for checks
)

// Options configure a Bar; the zero value is usable.
type Options struct {
	Label string // printed first, e.g. "epoch 3/80" or "eval test"
	Unit  string // what is counted, e.g. "img"; default "it"
	Mode  Mode
	// Interval is the least time between two plain lines; default 10 s.
	Interval time.Duration
	// Width is the number of cells of the drawn bar; default 24.
	Width int
	// Now is the clock; default time.Now (tests inject a fake one).
	Now func() time.Time
}

// Bar is the progress of one task of Total steps. Its methods are safe for
// concurrent use.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	o        Options
	total    int
	done     int
	suffix   string
	start    time.Time
	last     time.Time // last draw
	drawn    bool      // a redrawn line is on screen
	finished bool
}

// redrawEvery is the least time between two redraws on a terminal.
const redrawEvery = 100 * time.Millisecond

// New starts a bar of total steps writing to w.
func New(w io.Writer, total int, o Options) *Bar {
	if o.Unit == "" {
		o.Unit = "it"
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Width <= 0 {
		o.Width = 24
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Mode == Auto || o.Mode < 0 || o.Mode >= numModes {
		o.Mode = Lines
		if IsTerminal(w) {
			o.Mode = Redraw
		}
	}
	b := &Bar{w: w, o: o, total: max(total, 0)}
	b.start = o.Now()
	b.last = b.start
	return b
}

// Add advances the bar by n steps.
func (b *Bar) Add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	b.maybeDraw()
}

// Set sets the number of steps done.
func (b *Bar) Set(done int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = done
	b.maybeDraw()
}

// SetSuffix sets text shown after the ETA (e.g. "loss 3.21"); it is shown
// at the next draw.
func (b *Bar) SetSuffix(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.suffix = s
}

// Log prints a line of other output without garbling the bar: on a
// terminal the bar is erased, the line printed and the bar drawn again.
func (b *Bar) Log(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.o.Mode == Silent {
		return
	}
	if b.drawn {
		fmt.Fprint(b.w, "\r\x1b[K")
		b.drawn = false
	}
	fmt.Fprintln(b.w, strings.TrimRight(line, "\n"))
	if b.o.Mode == Redraw && !b.finished {
		b.draw()
	}
}

// Finish draws the final state and ends the line; later calls do nothing.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	switch b.o.Mode {
	case Redraw:
		b.draw()
		fmt.Fprintln(b.w)
		b.drawn = false
	case Lines:
		fmt.Fprintln(b.w, b.line())
	}
}

func (b *Bar) maybeDraw() {
	if b.finished || b.o.Mode == Silent {
		return
	}
	now := b.o.Now()
	switch b.o.Mode {
	case Redraw:
		if now.Sub(b.last) >= redrawEvery || b.done >= b.total || !b.drawn {
			b.last = now
			b.draw()
		}
	case Lines:
		if now.Sub(b.last) >= b.o.Interval && b.done < b.total {
			b.last = now
			fmt.Fprintln(b.w, b.line())
		}
	}
}

func (b *Bar) draw() {
	fmt.Fprint(b.w, "\r"+b.line()+"\x1b[K")
	b.drawn = true
}

// line formats "LABEL  45% |#####-----| 123/270 img  12.3 img/s  ETA 0:12  SUFFIX"
// (the bar only when redrawing; "elapsed" instead of the ETA when done).
func (b *Bar) line() string {
	var s strings.Builder
	if b.o.Label != "" {
		s.WriteString(b.o.Label)
		s.WriteString("  ")
	}
	frac := 0.0
	if b.total > 0 {
		frac = min(1, float64(b.done)/float64(b.total))
	}
	fmt.Fprintf(&s, "%3.0f%% ", 100*frac)
	if b.o.Mode == Redraw {
		full := int(frac * float64(b.o.Width))
		s.WriteString("|" + strings.Repeat("#", full) + strings.Repeat("-", b.o.Width-full) + "| ")
	}
	fmt.Fprintf(&s, "%d/%d %s", b.done, b.total, b.o.Unit)
	el := b.o.Now().Sub(b.start)
	if el > 0 && b.done > 0 {
		rate := float64(b.done) / el.Seconds()
		fmt.Fprintf(&s, "  %.3g %s/s", rate, b.o.Unit)
		if b.done < b.total {
			eta := time.Duration(float64(b.total-b.done) / rate * float64(time.Second))
			s.WriteString("  ETA " + Clock(eta))
		} else {
			s.WriteString("  in " + Clock(el))
		}
	}
	if b.suffix != "" {
		s.WriteString("  ")
		s.WriteString(b.suffix)
	}
	return s.String()
}

// Clock formats a duration as m:ss, or h:mm:ss from an hour on.
func Clock(d time.Duration) string {
	sec := int64(d.Round(time.Second) / time.Second)
	if sec < 0 {
		sec = 0
	}
	h, m, s := sec/3600, sec/60%60, sec%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}
