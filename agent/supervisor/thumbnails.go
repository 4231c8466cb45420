package supervisor

import (
	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/thumbnail"
)

// shoot takes the thumbnail of a raised alarm: of f, the picture being
// analysed, or without one (decode errors, audio alarms) of the stream's
// next picture if it has video; nil when none is taken.
func (st *stream) shoot(e detectors.Event, f *detectors.VideoFrame) *thumbnail.Shot {
	if st.cam == nil || e.State != detectors.Raised {
		return nil
	}
	t := e.Start
	if f != nil {
		t = f.PTS
	}
	return st.cam.Alarm(f, e.Defect, t)
}

// scaler gives the stream's camera the GPU backend's downscale, for the
// pictures it keeps in GPU memory (nil backend: the CPU's).
func (st *stream) scaler(b detectors.VideoBackend) {
	if st.cam == nil {
		return
	}
	d, _ := b.(thumbnail.DeviceScaler)
	st.cam.SetScaler(d)
}

// endSession: a run of the input ended; its backend is about to be freed.
func (st *stream) endSession() {
	if st.cam != nil {
		st.cam.End()
		st.cam.SetScaler(nil)
	}
}
