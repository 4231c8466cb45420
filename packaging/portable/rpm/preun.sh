# %preun of the streamqc rpm ($1: 0 on erase, 1 on upgrade): on erase, stop
# and disable the service; on upgrade it keeps running until %post restarts it.
if [ "$1" -eq 0 ]; then
	if [ -d /run/systemd/system ]; then
		systemctl disable --now streamqc.service >/dev/null 2>&1 || :
	else
		systemctl disable streamqc.service >/dev/null 2>&1 || :
	fi
fi
exit 0
