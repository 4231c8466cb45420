package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/firmware"
)

// BenchmarkStreamedBundle is the MQTT block stream's throughput through a
// real Mosquitto on loopback: one block in flight at a time (the agent's
// BlockSource), served by firmware.BlockServer (what `firmware push` runs),
// into a part file with its fsyncs and the final SHA-256 check.
func BenchmarkStreamedBundle(b *testing.B) {
	for _, block := range []int{64 << 10, firmware.DefaultBlock, 1 << 20} {
		b.Run(byteSize(block), func(b *testing.B) {
			benchStream(b, block)
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}

func benchStream(b *testing.B, block int) {
	br := mqtttest.Start(b, mqtttest.Options{})
	data := bytes.Repeat([]byte("streamqc bundle bytes "), (16<<20)/22)
	sum := sha256.Sum256(data)
	ref := firmware.BundleRef{Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), BlockSize: block}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := func(id string) *mqtt.Client {
		c, err := mqtt.New(mqtt.Options{Broker: br.URL, ClientID: id, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	agentC, pushC := client("bench-agent"), client("bench-push")
	blocks, reqs := make(chan []byte, 2*firmware.DefaultWindow), make(chan []byte, 2*firmware.DefaultWindow)
	agentC.Subscribe("bench/data", 1, func(m mqtt.Message) { blocks <- m.Payload })
	pushC.Subscribe("bench/get", 1, func(m mqtt.Message) { reqs <- m.Payload })
	for _, c := range []*mqtt.Client{agentC, pushC} {
		c.Start(ctx)
		defer c.Close(time.Second)
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		if err := c.WaitConnected(wctx); err != nil {
			b.Fatal(err)
		}
		wcancel()
	}
	srv := &firmware.BlockServer{Data: bytes.NewReader(data), Size: ref.Size, MaxBlock: firmware.MaxBlockSize, Requests: reqs,
		Publish: func(ctx context.Context, msg []byte) error {
			return pushC.Publish(ctx, mqtt.Message{Topic: "bench/data", Payload: msg, QoS: 1})
		}}
	go srv.Serve(ctx)
	dir := b.TempDir()
	b.SetBytes(ref.Size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		part := filepath.Join(dir, "bench.part")
		src := &firmware.BlockSource{Size: ref.Size, BlockSize: block, Blocks: blocks,
			Request: func(ctx context.Context, r firmware.BlockRequest) error {
				p, _ := json.Marshal(r)
				return agentC.Publish(ctx, mqtt.Message{Topic: "bench/get", Payload: p, QoS: 1})
			}}
		if err := firmware.Download(ctx, src, ref, part, firmware.DownloadOptions{Limit: 64 << 20}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.Remove(part)
		b.StartTimer()
	}
}
