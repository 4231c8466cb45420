package transport_test

import "github.com/streamqc/streamqc/transport/tstest"

type tstestPacket = tstest.Packet

func generate(n int) []tstest.Packet {
	return tstest.Generate(tstest.Options{Packets: n, CAT: true})
}

func bytesOf(ps []tstest.Packet) []byte { return tstest.Bytes(ps) }

func setTEI(p *tstest.Packet) { tstest.SetTEI(p) }
