// Package transport checks an MPEG transport stream against ETSI TR 101 290
// priority 1 and 2 as its bytes go by: a 188-byte packet parser, PSI section
// reassembly with CRC checks, and the timers of each indicator on the stream's
// own PCR clock. It counts and reports errors; deciding what pages someone is
// the detectors' business.
package transport

// Indicator is one TR 101 290 check.
type Indicator uint8

// The priority 1 and 2 indicators, in the order of TR 101 290 section 5.2.
const (
	SyncLoss         Indicator = iota // 1.1 TS_sync_loss
	SyncByte                          // 1.2 Sync_byte_error
	PATError                          // 1.3 PAT_error_2
	Continuity                        // 1.4 Continuity_count_error
	PMTError                          // 1.5 PMT_error_2
	PIDError                          // 1.6 PID_error
	TransportError                    // 2.1 Transport_error
	CRCError                          // 2.2 CRC_error
	PCRRepetition                     // 2.3a PCR_repetition_error
	PCRDiscontinuity                  // 2.3b PCR_discontinuity_indicator_error
	PCRAccuracy                       // 2.4 PCR_accuracy_error
	PTSError                          // 2.5 PTS_error
	CATError                          // 2.6 CAT_error
	NumIndicators
)

var indicatorNames = [NumIndicators]string{
	"1.1 ts_sync_loss", "1.2 sync_byte_error", "1.3 pat_error", "1.4 continuity_count_error",
	"1.5 pmt_error", "1.6 pid_error", "2.1 transport_error", "2.2 crc_error",
	"2.3a pcr_repetition_error", "2.3b pcr_discontinuity_indicator_error", "2.4 pcr_accuracy_error",
	"2.5 pts_error", "2.6 cat_error",
}

// String returns the indicator's number and name as events carry it, e.g.
// "1.4 continuity_count_error".
func (i Indicator) String() string {
	if i < NumIndicators {
		return indicatorNames[i]
	}
	return "unknown"
}

// Counts are the errors of each indicator.
type Counts [NumIndicators]int64

// Limits are the timings of the checks, in seconds; TR 101 290's values are
// DefaultLimits. A zero or negative limit disables its check.
type Limits struct {
	PAT              float64 // PAT sections at least this often on PID 0 (0.5)
	PMT              float64 // PMT sections at least this often on each PMT PID (0.5)
	PID              float64 // every PID a PMT refers to at least this often (user-set; 5)
	PCRRepetition    float64 // PCRs of a PCR PID at least this often (0.04)
	PCRDiscontinuity float64 // consecutive PCRs at most this far apart unless flagged (0.1)
	PCRAccuracy      float64 // PCR off its byte-position expectation by at most this (500 ns)
	PTS              float64 // PTS of each audio and video PID at least this often (0.7)
	CAT              float64 // while scrambled packets arrive without a CAT, one error per this period (0.5)
}

// DefaultLimits returns TR 101 290's timings.
func DefaultLimits() Limits {
	return Limits{PAT: 0.5, PMT: 0.5, PID: 5, PCRRepetition: 0.04, PCRDiscontinuity: 0.1,
		PCRAccuracy: 500e-9, PTS: 0.7, CAT: 0.5}
}

// Reporter receives what the analyzer finds. Times are seconds on the
// transport's clock (see Analyzer), plus the offset given to New.
type Reporter interface {
	// TransportError reports n errors of an indicator on a PID, the last
	// at t (n > 1 when a timer found several periods missed at once). The
	// PID is NoPID for sync errors, which belong to no PID.
	TransportError(ind Indicator, pid uint16, t float64, n int64)
	// TransportTime reports that the transport's clock reached t.
	TransportTime(t float64)
}

// NoPID is the PID of errors that belong to no packet's PID.
const NoPID = 0x2000
