//go:build !unix

package model

import "time"

// cpuTime is not measured here: op times show 0 cores.
func cpuTime() time.Duration { return 0 }
