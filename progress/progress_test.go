package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeClock advances by step at every call.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

// Not a terminal (a buffer): plain lines at most every Interval, then a
// final line; no carriage returns or escape codes.
func TestLinesWithoutTerminal(t *testing.T) {
	var b bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: time.Second}
	bar := New(&b, 100, Options{Label: "eval test", Unit: "img", Now: clk.now})
	for range 100 {
		bar.Add(1)
	}
	bar.Log("a message")
	bar.Finish()
	bar.Finish() // a second Finish prints nothing
	out := b.String()
	if strings.ContainsAny(out, "\r\x1b") {
		t.Errorf("escape codes without a terminal: %q", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// The clock moves 1 s per read, about 1.1 reads per Add: ~110 s in
	// all, a line every 10 s (11), the message and the final line.
	if len(lines) < 8 || len(lines) > 14 {
		t.Errorf("%d lines:\n%s", len(lines), out)
	}
	if !strings.HasPrefix(lines[0], "eval test   ") || !strings.Contains(lines[0], "img/s  ETA ") {
		t.Errorf("first line %q", lines[0])
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "eval test  100% 100/100 img  ") || !strings.Contains(last, " in ") {
		t.Errorf("last line %q", last)
	}
	if !strings.Contains(out, "\na message\n") {
		t.Errorf("log line missing: %q", out)
	}
}

// Redraw mode: one line redrawn with \r and erase-to-end, a bar, a
// correct ETA and a final newline.
func TestRedraw(t *testing.T) {
	var b bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: 500 * time.Millisecond}
	bar := New(&b, 4, Options{Label: "epoch 1/3", Mode: Redraw, Width: 8, Now: clk.now})
	bar.SetSuffix("loss 2.5")
	bar.Add(1)
	out := b.String()
	// After 1 of 4 steps in 1 s (two clock reads): 1 it/s, ETA 3 s.
	want := "\repoch 1/3   25% |##------| 1/4 it  1 it/s  ETA 0:03  loss 2.5\x1b[K"
	if out != want {
		t.Errorf("got  %q\nwant %q", out, want)
	}
	bar.Log("line")
	if !strings.Contains(b.String(), "\r\x1b[Kline\n\repoch 1/3") {
		t.Errorf("Log does not erase and redraw: %q", b.String())
	}
	bar.Add(3)
	bar.Finish()
	if end := b.String(); !strings.HasSuffix(end, "\x1b[K\n") || !strings.Contains(end[strings.LastIndex(end, "\r"):], "100% |########| 4/4 it  ") {
		t.Errorf("end %q", b.String())
	}
}

func TestSilentAndTerminalDetection(t *testing.T) {
	var b bytes.Buffer
	bar := New(&b, 10, Options{Mode: Silent})
	bar.Add(10)
	bar.Log("x")
	bar.Finish()
	if b.Len() != 0 {
		t.Errorf("silent bar wrote %q", b.String())
	}
	if IsTerminal(&b) {
		t.Error("a buffer is a terminal")
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if IsTerminal(null) {
		t.Error("the null device is a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is a terminal")
	}
	if New(f, 1, Options{}).o.Mode != Lines {
		t.Error("Auto did not choose Lines for a file")
	}
}

func TestClock(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0:00", 61 * time.Second: "1:01", 3*time.Hour + 5*time.Second: "3:00:05", -time.Second: "0:00"} {
		if got := Clock(d); got != want {
			t.Errorf("Clock(%v) = %q, want %q", d, got, want)
		}
	}
}
