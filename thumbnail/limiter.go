package thumbnail

import "time"

// Limiter is a token bucket: at most Rate events a second on average, up to
// Rate at once. Not safe for concurrent use (the Service locks it).
type Limiter struct {
	Rate   float64
	tokens float64
	last   time.Time
}

// Allow takes a token at now if there is one.
func (l *Limiter) Allow(now time.Time) bool { return l.AllowAbove(now, 0) }

// AllowAbove takes a token at now only if reserve tokens are left after it:
// a lower-priority user (live thumbnails) leaves reserve to Allow's users
// (alarms), so that it cannot use up the whole budget.
func (l *Limiter) AllowAbove(now time.Time, reserve float64) bool {
	if l.Rate <= 0 {
		return true
	}
	if l.last.IsZero() {
		l.tokens = l.Rate
	} else if dt := now.Sub(l.last).Seconds(); dt > 0 {
		l.tokens = min(l.Rate, l.tokens+dt*l.Rate)
	}
	l.last = now
	if l.tokens < 1+reserve {
		return false
	}
	l.tokens--
	return true
}

// Interval lets one event through per Every (the first at once).
type Interval struct {
	Every time.Duration
	last  time.Time
}

// Allow reports whether now is at least Every after the last event let
// through, and if so makes now the last.
func (i *Interval) Allow(now time.Time) bool {
	if !i.Due(now) {
		return false
	}
	i.last = now
	return true
}

// Due reports whether Allow(now) would let an event through, without
// taking it.
func (i *Interval) Due(now time.Time) bool {
	return i.last.IsZero() || now.Sub(i.last) >= i.Every
}
