# %postun of the streamqc rpm ($1: 0 on erase, 1 on upgrade). The state in
# /var/lib/streamqc (spool, last good config) and the user stay on erase,
# as RPM leaves what it did not install as files; remove them by hand.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
