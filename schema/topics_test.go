package schema

import "testing"

func TestJobTopics(t *testing.T) {
	tp := NewTopics("eu", "box")
	j := tp.Job("job-1")
	if j.Job != "streamqc/v1/eu/box/jobs/job-1" || j.Status != j.Job+"/status" ||
		j.StreamGet != j.Job+"/stream/get" || j.StreamData != j.Job+"/stream/data" {
		t.Fatalf("job topics %+v", j)
	}
	for topic, want := range map[string]string{
		"streamqc/v1/eu/box/jobs/job-1":        "job-1",
		"streamqc/v1/eu/box/jobs/job-1/status": "",
		"streamqc/v1/eu/box/jobs/":             "",
		"streamqc/v1/eu/other/jobs/job-1":      "",
		"streamqc/v1/eu/box/config/desired":    "",
	} {
		if got := tp.JobID(topic); got != want {
			t.Errorf("JobID(%q) = %q, want %q", topic, got, want)
		}
	}
}

func TestTopicsAndFilter(t *testing.T) {
	tp := NewTopics("eu", "box")
	for got, want := range map[string]string{
		tp.Status:                      "streamqc/v1/eu/box/status",
		tp.Events:                      "streamqc/v1/eu/box/events",
		tp.Desired:                     "streamqc/v1/eu/box/config/desired",
		tp.FleetDesired:                "streamqc/v1/eu/config/desired",
		tp.Stored:                      "streamqc/v1/eu/box/events/stored",
		tp.Missing:                     "streamqc/v1/eu/box/events/missing",
		tp.Thumbnails:                  "streamqc/v1/eu/box/thumbnails/+/+",
		tp.Thumbnail("ch1", ThumbLive): "streamqc/v1/eu/box/thumbnails/ch1/live",
		Filter("", "", "events"):       "streamqc/v1/+/+/events",
		Filter("eu", "box", "status"):  "streamqc/v1/eu/box/status",
	} {
		if got != want {
			t.Errorf("topic %q, want %q", got, want)
		}
	}
	if v := PeekVersion([]byte(`{"version":7,"streams":"garbage"}`)); v != 7 {
		t.Errorf("PeekVersion = %d", v)
	}
	if v := PeekVersion([]byte(`garbage`)); v != 0 {
		t.Errorf("PeekVersion(garbage) = %d", v)
	}
}
