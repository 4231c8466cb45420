package spool

// Record is one spooled message: its sequence number (strictly increasing,
// never reused, across restarts) and its bytes.
type Record struct {
	Seq  uint64
	Data []byte
}
