package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/firmware"
	"github.com/streamqc/streamqc/schema"
)

// firmwarePush publishes an update job for one agent and follows it to its
// end: it serves the bundle's blocks over MQTT (unless --url names where the
// agent downloads it), prints every status, and clears the retained job
// once it ended. Exit 0 when the update succeeded, 1 when it failed, rolled
// back or did not end within --timeout, 2 on usage.
func firmwarePush(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("firmware push", "--agent A [--fleet F] [--url https://...] [--job-id ID] [--allow-downgrade] [--health-deadline D] [--timeout D] [broker flags] BUNDLE",
		"Publishes an update job for one agent, serves the bundle's blocks (unless --url), prints every status;\nexit 0 once the new version is healthy, 1 when it failed or was rolled back.", stdout, stderr)
	bf := addBrokerFlags(fs.FlagSet)
	agentID := fs.String("agent", "", "the agent to update (required)")
	jobID := fs.String("job-id", "", "job id (default: a new one); the id of a job already published follows it and serves its blocks again")
	url := fs.String("url", "", "https URL the agent downloads the bundle from (default: streamed over MQTT by this command)")
	block := fs.Int("block-size", firmware.DefaultBlock, "bytes per block of a streamed bundle")
	allowDown := fs.Bool("allow-downgrade", false, "accept an older or equal version on the agent")
	health := fs.Duration("health-deadline", 0, "time the new version has to pass its health check (0: the agent's)")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up following the job after this long")
	if code, done := fs.parse(args); done {
		return code
	}
	if *agentID == "" || len(fs.operands) != 1 {
		return fs.fail("--agent and one BUNDLE are required")
	}
	if *jobID != "" && !firmware.ValidJobID(*jobID) {
		return fs.fail("--job-id %q is not a valid job id", *jobID)
	}
	fatal := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "streamqc firmware push: "+format+"\n", a...)
		return 1
	}
	f, err := os.Open(fs.operands[0])
	if err != nil {
		return fatal("%v", err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return fatal("%s: %v", fs.operands[0], err)
	}
	id := *jobID
	if id == "" {
		var b [3]byte
		_, _ = rand.Read(b[:])
		id = "fw-" + time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	}
	job := firmware.Job{
		JobID: id, Type: firmware.JobType, Created: time.Now().UTC().Truncate(time.Second),
		Bundle:         firmware.BundleRef{Size: size, SHA256: hex.EncodeToString(h.Sum(nil)), URL: *url},
		AllowDowngrade: *allowDown, HealthDeadline: health.Seconds(),
	}
	if *url == "" && *block != firmware.DefaultBlock {
		job.Bundle.BlockSize = *block
	}
	if err := job.Validate(); err != nil {
		return fatal("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	statuses := make(chan firmware.JobStatus, 64)
	existing := make(chan []byte, 1)
	requests := make(chan []byte, 64)
	var topics schema.JobTopics
	c, fleetName, err := bf.connectWith(ctx, true, quietLogger(false), func(c *mqtt.Client, fleetName string) {
		if fleetName == "" {
			fleetName = "default"
		}
		topics = schema.NewTopics(fleetName, *agentID).Job(id)
		c.Subscribe(topics.Status, 1, func(m mqtt.Message) {
			var st firmware.JobStatus
			if json.Unmarshal(m.Payload, &st) == nil && st.JobID == id {
				statuses <- st
			}
		})
		c.Subscribe(topics.Job, 1, func(m mqtt.Message) {
			if m.Retained {
				select {
				case existing <- m.Payload:
				default:
				}
			}
		})
		c.Subscribe(topics.StreamGet, 1, func(m mqtt.Message) {
			select {
			case requests <- m.Payload:
			default: // the agent asks again after its timeout
			}
		})
	})
	if err != nil {
		return fatal("%v", err)
	}
	defer c.Close(2 * time.Second)
	if fleetName == "" {
		fleetName = "default"
	}
	if *url == "" {
		pub := func(ctx context.Context, msg []byte) error {
			return c.Publish(ctx, mqtt.Message{Topic: topics.StreamData, Payload: msg, QoS: 1})
		}
		go func() {
			_ = firmware.ServeBlocks(ctx, f, size, firmware.MaxBlockSize, requests, pub, quietLogger(false))
		}()
	}
	// A retained job of this id is followed, not published again: the
	// agent would take a second publication as a replay.
	select {
	case <-existing:
		fmt.Fprintf(stdout, "job %s already published for %s/%s: following it\n", id, fleetName, *agentID)
	case <-time.After(time.Second):
		b, _ := json.Marshal(job)
		if err := c.Publish(ctx, mqtt.Message{Topic: topics.Job, Payload: b, QoS: 1, Retained: true}); err != nil {
			return fatal("publish the job: %v", err)
		}
		how := "streamed over MQTT"
		if *url != "" {
			how = "from " + *url
		}
		fmt.Fprintf(stdout, "job %s for %s/%s: %s, %d bytes, sha256 %s, %s\n", id, fleetName, *agentID, fs.operands[0], size, job.Bundle.SHA256, how)
	}
	var last firmware.JobStatus
	for {
		select {
		case <-ctx.Done():
			return fatal("job %s: no end within %s (last state %q); the job stays published: run push again with --job-id %s to follow it", id, *timeout, last.State, id)
		case st := <-statuses:
			if st.State == last.State && st.Percent == last.Percent && st.Reason == last.Reason {
				continue
			}
			last = st
			line := fmt.Sprintf("%s  %-12s", st.Time, st.State)
			if st.State == firmware.JobDownloading {
				line += fmt.Sprintf(" %3d%% (%d of %d bytes)", st.Percent, st.Bytes, st.Total)
			}
			if st.Version != "" {
				line += fmt.Sprintf(" %s -> %s", st.FromVersion, st.Version)
			}
			if st.Reason != "" {
				line += "  " + st.Reason
			}
			fmt.Fprintln(stdout, line)
			if !st.State.Terminal() {
				continue
			}
			// Ended: the retained job is no longer needed (the agent keeps
			// its record, so it would not run twice anyway).
			if err := c.Publish(context.Background(), mqtt.Message{Topic: topics.Job, Payload: nil, QoS: 1, Retained: true}); err != nil {
				fmt.Fprintf(stderr, "streamqc firmware push: retained job %s not cleared: %v\n", id, err)
			}
			if st.State == firmware.JobSucceeded {
				return 0
			}
			return 1
		}
	}
}
