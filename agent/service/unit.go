package service

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
)

// unitTemplate is our own systemd unit: kardianos/service's built-in one
// hard-codes RestartSec=120 and puts StartLimit* in [Service], where systemd
// ignores them. Hardening: the agent reads its config, writes only its state
// directory, talks IP (and netlink for interface lookups), and reaches no
// device but the GPU (/dev/nvidia*) and VAAPI/DRM (/dev/dri) nodes.
// MemoryDenyWriteExecute is left off: the CUDA driver JIT-compiles PTX.
// NotifyAccess=all: after an over-the-air update the agent runs as a child
// of the launcher (the packaged binary), and that child sends READY and
// feeds the watchdog.
const unitTemplate = `[Unit]
Description=streamqc live audio/video monitoring agent
Documentation=https://github.com/streamqc/streamqc
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=300
StartLimitBurst=5

[Service]
Type=notify
NotifyAccess=all
ExecStart={{.Exec}} run --config {{.Config}} --log-format json
Restart=on-failure
RestartSec=2s
WatchdogSec={{.Watchdog}}
TimeoutStartSec=60s
TimeoutStopSec=20s
User={{.User}}
Group={{.User}}
StateDirectory=streamqc
StateDirectoryMode=0750
ConfigurationDirectory=streamqc
ReadWritePaths=/var/lib/streamqc
UMask=0027
LimitNOFILE=65536
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
SystemCallArchitectures=native
SystemCallFilter=@system-service
DevicePolicy=closed
DeviceAllow=char-drm rw
DeviceAllow=char-nvidia-frontend rw
DeviceAllow=char-nvidia-uvm rw
DeviceAllow=char-nvidia-caps rw
DeviceAllow=char-nvidiactl rw

[Install]
WantedBy=multi-user.target
`

// Unit renders the systemd unit for o.
func Unit(o Options) (string, error) {
	o = o.withDefaults()
	for name, v := range map[string]string{"executable": o.Executable, "config": o.Config, "user": o.User} {
		if v == "" || strings.ContainsAny(v, " \t\n\"'\\%$;") {
			return "", fmt.Errorf("service unit: %s %q: empty, or has spaces or characters systemd would expand", name, v)
		}
	}
	var b bytes.Buffer
	err := template.Must(template.New("unit").Parse(unitTemplate)).Execute(&b, map[string]string{
		"Exec": o.Executable, "Config": o.Config, "User": o.User,
		"Watchdog": fmt.Sprintf("%ds", int(o.Watchdog.Seconds())),
	})
	if err != nil {
		return "", fmt.Errorf("service unit: %w", err)
	}
	return b.String(), nil
}
