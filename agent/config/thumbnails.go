package config

import (
	"fmt"
	"time"

	"github.com/streamqc/streamqc/thumbnail"
)

// Thumbnails is the agent's `thumbnails:` section: small JPEGs of the
// pictures that raise alarms (on by default) and, every LiveInterval, of
// every stream (off by default), retained on .../thumbnails/{stream}/{kind}.
type Thumbnails struct {
	Alarms       bool     `yaml:"alarms"`
	LiveInterval Duration `yaml:"live_interval"`
	Width        int      `yaml:"width"`
	Quality      int      `yaml:"quality"`
	MinInterval  Duration `yaml:"min_interval"`
	MaxPerSecond int      `yaml:"max_per_second"`
}

// DefaultThumbnails are thumbnail.DefaultConfig.
func DefaultThumbnails() Thumbnails {
	d := thumbnail.DefaultConfig()
	return Thumbnails{Alarms: d.Alarms, LiveInterval: Duration(d.Live), Width: d.Width, Quality: d.Quality,
		MinInterval: Duration(d.MinInterval), MaxPerSecond: d.MaxPerSecond}
}

// Config is the section as the thumbnail package takes it.
func (t Thumbnails) Config() thumbnail.Config {
	return thumbnail.Config{Alarms: t.Alarms, Live: time.Duration(t.LiveInterval), Width: t.Width, Quality: t.Quality,
		MinInterval: time.Duration(t.MinInterval), MaxPerSecond: t.MaxPerSecond}
}

// problems of the section, each a *FieldError.
func (t Thumbnails) problems() []error {
	var errs []error
	addf := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: "thumbnails." + path, Err: fmt.Errorf(format, args...)})
	}
	if d := time.Duration(t.LiveInterval); d != 0 && (d < time.Second || d > 24*time.Hour) {
		addf("live_interval", "%s: 0 (off) or between 1s and 24h", d)
	}
	if t.Width < 64 || t.Width > 1280 || t.Width%2 != 0 {
		addf("width", "%d: an even number of pixels from 64 to 1280", t.Width)
	}
	if t.Quality < 1 || t.Quality > 100 {
		addf("quality", "%d: a JPEG quality from 1 to 100", t.Quality)
	}
	if d := time.Duration(t.MinInterval); d < 0 || d > time.Hour {
		addf("min_interval", "%s: between 0 and 1h", d)
	}
	if t.MaxPerSecond < 1 || t.MaxPerSecond > 1000 {
		addf("max_per_second", "%d: from 1 to 1000", t.MaxPerSecond)
	}
	return errs
}
