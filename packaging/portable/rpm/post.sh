# %post of the streamqc rpm ($1: 1 on install, 2 on upgrade).
# Creates the system user and group streamqc (in video and render where they
# exist: the NVIDIA and DRM device nodes), owns the state directory, and,
# as the .deb does, enables and starts the service on install, restarts it
# on upgrade, where systemd runs.
NAME=streamqc
STATE=/var/lib/streamqc
getent group "$NAME" >/dev/null || groupadd -r "$NAME"
getent passwd "$NAME" >/dev/null ||
	useradd -r -g "$NAME" -d "$STATE" -M -s /sbin/nologin -c "streamqc monitoring agent" "$NAME"
for g in video render; do
	getent group "$g" >/dev/null && usermod -a -G "$g" "$NAME" || :
done
mkdir -p "$STATE"
chown "$NAME:$NAME" "$STATE"
chmod 0750 "$STATE"
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
	if [ "$1" -eq 1 ]; then
		systemctl enable --now streamqc.service >/dev/null 2>&1 || :
	else
		systemctl try-restart streamqc.service >/dev/null 2>&1 || :
	fi
elif [ "$1" -eq 1 ]; then
	systemctl enable streamqc.service >/dev/null 2>&1 || :
fi
exit 0
