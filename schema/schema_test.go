package schema

import (
	"strings"
	"testing"
)

func TestSchemas(t *testing.T) {
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		schema, doc string
		bad         string // substring of the error, "" when valid
	}{
		{Desired, `{"version":1,"streams":[{"id":"ch1","url":"udp://239.0.0.1:1234","detectors":{"black":{"min_duration":3}}}]}`, ""},
		{Desired, `{"version":0,"streams":[]}`, "/version"},
		{Desired, `{"version":2,"streams":[{"id":"bad id","url":"udp://x"}]}`, "/streams/0/id"},
		{Desired, `{"version":2,"streams":[{"id":"a","url":"udp://x","extra":1}]}`, "extra"},
		{Desired, `{"version":2,"streams":[],"detectors":{"nosuch":{}}}`, "must be one of"},
		{Desired, `{"version":2}`, "streams"},
		{Desired, `[1,2]`, "/"},
		{Desired, `{"version":`, "not JSON"},
		{FleetDesired, `{"version":3,"detectors":{"silence":{"threshold_db":-50}},"publish":{"metrics_interval":5}}`, ""},
		{FleetDesired, `{"version":3,"streams":[]}`, "streams"},
		{Thumbnail, `{"type":"thumbnail","id":"0123456789abcdef0123456789abcdef","fleet":"f","agent":"a","stream":"s","kind":"alarm","event":"0123456789abcdef0123456789abcdef","defect":"black","pts":1.5,"time":"2026-12-04T07:00:00Z","width":320,"height":180,"content_type":"image/jpeg","data":"/9j/4AAQ"}`, ""},
		{Thumbnail, `{"type":"thumbnail","id":"0123456789abcdef0123456789abcdef","fleet":"f","agent":"a","stream":"s","kind":"live","pts":1.5,"time":"2026-12-04T07:00:00Z","width":320,"height":180,"content_type":"image/jpeg","data":"/9j/4AAQ"}`, ""},
		{Thumbnail, `{"type":"thumbnail","id":"0123456789abcdef0123456789abcdef","fleet":"f","agent":"a","stream":"s","kind":"alarm","pts":1.5,"time":"2026-12-04T07:00:00Z","width":320,"height":180,"content_type":"image/jpeg","data":"/9j/4AAQ"}`, "event"},
		{Thumbnail, `{"type":"thumbnail","id":"0123456789abcdef0123456789abcdef","fleet":"f","agent":"a","stream":"s","kind":"live","pts":1.5,"time":"2026-12-04T07:00:00Z","width":320,"height":180,"content_type":"image/png","data":"x"}`, "/content_type"},
		{Stored, `{"type":"stored","consumer":"dashboard","seq":41,"gap":true,"lost":2,"time":"2026-12-04T07:00:00Z"}`, ""},
		{Stored, `{"type":"stored","consumer":"dashboard","seq":-1,"time":"2026-12-04T07:00:00Z"}`, "/seq"},
		{Missing, `{"type":"missing","from":3,"to":7,"reason":"dropped","time":"2026-12-04T07:00:00Z"}`, ""},
		{Missing, `{"type":"missing","from":3,"to":7,"reason":"lost","time":"2026-12-04T07:00:00Z"}`, "/reason"},
		{Event, `{"type":"defect","id":"0123456789abcdef0123456789abcdef","seq":1,"fleet":"f","agent":"a","stream":"s","defect":"black","state":"raised","start":1.5,"time":"2026-11-22T07:00:00Z","thumbnail":"0123456789abcdef0123456789abcdef"}`, ""},
		{Event, `{"type":"defect","id":"0123456789abcdef0123456789abcdef","seq":1,"fleet":"f","agent":"a","stream":"s","defect":"black","state":"raised","start":1.5,"time":"2026-11-22T07:00:00Z"}`, ""},
		{Event, `{"type":"defect","id":"0123456789abcdef0123456789abcdef","seq":1,"fleet":"f","agent":"a","stream":"s","defect":"black","state":"cleared","start":1.5,"time":"2026-11-22T07:00:00Z"}`, "end"},
		{Event, `{"type":"defect","id":"0123456789abcdef0123456789abcdef","seq":1,"fleet":"f","agent":"a","stream":"s","defect":"black","state":"raised","start":1.5,"time":"yesterday"}`, "/time"},
		{Event, `{"type":"defect","id":"0123456789abcdef0123456789abcdef","seq":1,"fleet":"f","agent":"a","stream":"s","defect":"tr101290","state":"raised","start":1.5,"reason":"1.4 continuity_count_error","values":{"pid":256,"errors":3,"errors_per_second":1.5},"time":"2026-11-22T07:00:00Z"}`, ""},
		{Desired, `{"version":1,"streams":[{"id":"ch1","url":"udp://239.0.0.1:1234","detectors":{"tr101290":{"pcr_repetition":0.1}}}]}`, ""},
		{Metrics, `{"time":"2026-11-22T07:00:00Z","fleet":"f","agent":"a","version":"dev","interval":10,"process":{"cpu_percent":1,"rss_bytes":1,"heap_bytes":1,"goroutines":1,"uptime":1},"spool":{"pending":0,"bytes":0,"max_bytes":1,"dropped":0,"appended":0,"acked":0,"oldest_age":0,"append_errors":0},"broker_connected":true,"streams":[{"id":"ch1","state":"running","frames":10,"fps":25,"queue_depth":0,"alarms":["tr101290/1.4 continuity_count_error"],"tr101290":{"1.4 continuity_count_error":3,"2.3a pcr_repetition_error":0}}]}`, ""},
		{Metrics, `{"time":"2026-11-22T07:00:00Z","fleet":"f","agent":"a","version":"dev","interval":10,"process":{"cpu_percent":1,"rss_bytes":1,"heap_bytes":1,"goroutines":1,"uptime":1},"spool":{"pending":0,"bytes":0,"max_bytes":1,"dropped":0,"appended":0,"acked":0,"oldest_age":0,"append_errors":0},"broker_connected":true,"streams":[{"id":"ch1","state":"running","frames":10,"fps":25,"queue_depth":0,"tr101290":{"continuity":-1}}]}`, "tr101290"},
		{Status, `{"state":"offline","fleet":"f","agent":"a","version":"dev","reason":"connection lost"}`, ""},
		{Reported, `{"version":4,"status":"rejected","reason":"stale","applied_version":5,"time":"2026-11-22T07:00:00Z","streams":[{"id":"a","state":"running"}]}`, ""},
		{Metrics, metricsDoc(`"decoder":"nvdec:1"`), ""},
		{Metrics, metricsDoc(`"decoder":"cpu"`), ""},
		{Metrics, metricsDoc(`"decoder":"vaapi:/dev/dri/renderD128"`), ""},
		{Metrics, metricsDoc(`"decoder":"gpu"`), "/streams/0/decoder"},
		{Metrics, metricsDoc(`"decoder":"nvdec:"`), "/streams/0/decoder"},
		{SignedConfig, `{"format":"streamqc-signed-config/1","scope":"agent","fleet":"f","agent":"a","payload":"e30=","key_id":"0123456789abcdef","signature":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}`, ""},
		{SignedConfig, `{"format":"streamqc-signed-config/1","scope":"fleet","fleet":"f","payload":"e30=","key_id":"0123456789abcdef","signature":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}`, ""},
		{SignedConfig, `{"format":"streamqc-signed-config/1","scope":"agent","fleet":"f","payload":"e30=","key_id":"0123456789abcdef","signature":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}`, "agent"},
		{SignedConfig, `{"format":"streamqc-signed-config/1","scope":"fleet","fleet":"f","agent":"a","payload":"e30=","key_id":"0123456789abcdef","signature":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}`, "/"},
		{SignedConfig, `{"format":"streamqc-signed-config/1","scope":"agent","fleet":"f","agent":"a","payload":"e30=","key_id":"0123456789abcdef","signature":"short=="}`, "/signature"},
		{SignedConfig, `{"format":"streamqc-signed-config/2","scope":"agent","fleet":"f","agent":"a","payload":"e30=","key_id":"0123456789abcdef","signature":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}`, "/format"},
		{SignedConfig, `{"format":"streamqc-signed-config/1","scope":"agent","fleet":"f","agent":"a/b","payload":"e30=","key_id":"0123456789abcdef","signature":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}`, "/agent"},
		{"nosuch", `{}`, "unknown"},
	}
	for _, c := range cases {
		err := s.Validate(c.schema, []byte(c.doc))
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%s %s: %v", c.schema, c.doc, err)
		case c.bad != "" && err == nil:
			t.Errorf("%s %s: accepted", c.schema, c.doc)
		case c.bad != "" && !strings.Contains(err.Error(), c.bad):
			t.Errorf("%s %s: error %q does not mention %q", c.schema, c.doc, err, c.bad)
		}
	}
}

// metricsDoc is a valid metrics payload with one stream holding extra.
func metricsDoc(extra string) string {
	return `{"time":"2026-11-22T07:00:00Z","fleet":"f","agent":"a","interval":10,` +
		`"process":{"cpu_percent":12.5,"rss_bytes":1,"goroutines":9,"uptime":3},"spool":{"pending":0,"bytes":0,"dropped":0},` +
		`"streams":[{"id":"s","state":"running","frames":9,"fps":30,"queue_depth":0,` + extra + `}]}`
}
