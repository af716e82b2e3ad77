import Foundation

/// The files of the guest's root filesystem that Nimbus writes itself (the rest comes from
/// Debian packages). Kept as text here, readable as the shell and awk they are.
enum GuestFiles {
    /// /init: busybox sh as PID 1. See docs/test-image.md for what it does and prints.
    static let initScript = #"""
#!/bin/busybox sh
# /init of the Nimbus test image: busybox sh as PID 1 in the initramfs (the root filesystem
# never leaves RAM, as in CirrOS). It brings up devices, finds the instance's metadata
# (config drive first, then the metadata service), prints one NIMBUS-GUEST line to the
# serial console, starts dropbear and acpid, runs user data, and keeps a console shell.

/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
umask 022

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /mnt/config
mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
chmod 1777 /tmp
# Everything init prints goes to the console the kernel gave it (console=ttyS0).
exec </dev/console >/dev/console 2>&1

say() { echo "NIMBUS-GUEST: $*"; }
say "init started (kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime)s)"

# Modules, dependencies first; modprobe reads the filtered modules.dep shipped beside them.
# virtio_pci needs both *_legacy_dev and *_modern_dev on this kernel. isofs reads the config
# drive (as virtio-blk, or as a cdrom on IDE or AHCI: ata_piix, ahci, sr_mod). button and evdev let busybox
# acpid see the ACPI power button.
for m in $(cat /etc/nimbus/modules); do
    modprobe "$m" 2>/dev/null || say "module $m did not load"
done

MD=/run/nimbus
mkdir -p "$MD"

# Prints path<TAB>value lines for a JSON file (see /etc/nimbus/json.awk).
json_flat() { awk -f /etc/nimbus/json.awk "$1"; }

# The ISO 9660 volume identifier: 32 bytes at offset 32808 (sector 16 of 2048 bytes, byte 40).
iso_label() { dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | tr -d ' \000'; }

# A config drive is a block device whose volume label is config-2. findfs asks busybox's
# volume_id; reading the label by hand covers a busybox without it.
find_config_drive() {
    dev=$(findfs LABEL=config-2 2>/dev/null) && [ -b "$dev" ] && { echo "$dev"; return 0; }
    for dev in /dev/vd? /dev/sr? /dev/sd?; do
        [ -b "$dev" ] || continue
        [ "$(iso_label "$dev")" = "config-2" ] && { echo "$dev"; return 0; }
    done
    return 1
}

# True while a SCSI cdrom (type 5) has been found but has no block device yet.
cdrom_pending() {
    for t in /sys/bus/scsi/devices/*/type; do
        [ -f "$t" ] && [ "$(cat "$t")" = 5 ] && ! ls "${t%/type}/block" >/dev/null 2>&1 && return 0
    done
    return 1
}

SOURCE=none
# Loading a module waits for the async probing it started, so a cdrom is normally there by
# now; the retries cover one whose block device is still being set up.
tries=0
while [ $tries -lt 20 ]; do
    if CD=$(find_config_drive); then
        if mount -t iso9660 -o ro "$CD" /mnt/config 2>/dev/null || mount -o ro "$CD" /mnt/config 2>/dev/null; then
            say "config drive found on $CD"
            for f in meta_data.json user_data network_data.json vendor_data.json; do
                [ -f "/mnt/config/openstack/latest/$f" ] && cp "/mnt/config/openstack/latest/$f" "$MD/$f"
            done
            umount /mnt/config
            [ -s "$MD/meta_data.json" ] && SOURCE=config-drive
        else
            say "config drive $CD does not mount"
        fi
        break
    fi
    cdrom_pending || break
    tries=$((tries + 1))
    sleep 0.1
done
[ "$SOURCE" = none ] && say "no config drive (looked $((tries + 1)) time(s))"

ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
    ip link set eth0 up
    # Five discovers, two seconds apart; udhcpc forks to the background once it has a lease
    # (or gives up, -b) and keeps renewing it.
    udhcpc -i eth0 -s /etc/nimbus/udhcpc.sh -O staticroutes -O mtu -t 5 -T 2 -b -p /run/udhcpc.eth0.pid >/run/udhcpc.log 2>&1
    if ip -4 addr show dev eth0 | grep -q inet; then say "eth0 has a DHCP lease"; else say "eth0 got no DHCP lease"; fi
    if [ "$SOURCE" = none ]; then
        BASE=http://169.254.169.254/openstack/latest
        for try in 1 2 3; do
            if timeout 10 wget -q -O "$MD/meta_data.json.part" "$BASE/meta_data.json" 2>/dev/null \
                && [ -s "$MD/meta_data.json.part" ]; then
                mv "$MD/meta_data.json.part" "$MD/meta_data.json"
                SOURCE=metadata-service
                timeout 10 wget -q -O "$MD/user_data.part" "$BASE/user_data" 2>/dev/null \
                    && mv "$MD/user_data.part" "$MD/user_data"
                break
            fi
            sleep 1
        done
        rm -f "$MD"/*.part
    fi
fi

if [ "$SOURCE" = none ]; then
    say "no metadata"
else
    say "metadata from $SOURCE"
fi

UUID=; HOSTNAME_MD=
if [ -s "$MD/meta_data.json" ]; then
    json_flat "$MD/meta_data.json" > "$MD/meta_data.flat" || say "meta_data.json does not parse"
    UUID=$(awk -F'\t' '$1 == "uuid" { print $2; exit }' "$MD/meta_data.flat")
    HOSTNAME_MD=$(awk -F'\t' '$1 == "hostname" { print $2; exit }' "$MD/meta_data.flat")
fi
[ -n "$HOSTNAME_MD" ] || HOSTNAME_MD=nimbus-guest
hostname "$HOSTNAME_MD"
echo "$HOSTNAME_MD" > /etc/hostname
echo "127.0.1.1 $HOSTNAME_MD ${HOSTNAME_MD%%.*}" >> /etc/hosts

IPS=$(ip -4 -o addr show scope global | awk '{ sub(/\/.*/, "", $4); printf "%s%s", sep, $4; sep = "," }')
# The memory the kernel manages, MiB (MemTotal: the flavor's RAM less what the kernel keeps).
MEM=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
echo "NIMBUS-GUEST uuid=${UUID:-none} hostname=$HOSTNAME_MD ip=${IPS:-none} mem=${MEM:-0}"

# SSH: every public key of the metadata (public_keys/<name>) for nimbus and for root.
if [ -s "$MD/meta_data.flat" ]; then
    awk -F'\t' '$1 ~ /^public_keys\// { print $2 }' "$MD/meta_data.flat" > "$MD/authorized_keys"
fi
for home in /home/nimbus /root; do
    mkdir -p "$home/.ssh"
    [ -s "$MD/authorized_keys" ] && cp "$MD/authorized_keys" "$home/.ssh/authorized_keys"
    chmod 700 "$home/.ssh"
done
chown -R 1000:1000 /home/nimbus
[ -s "$MD/authorized_keys" ] && say "installed $(wc -l < "$MD/authorized_keys") public key(s) for nimbus and root"
(
    mkdir -p /etc/dropbear
    # Host keys are made at every boot, so no two guests share one. RSA is left out: it takes
    # seconds under TCG, and ed25519/ECDSA serve every current client.
    for t in ed25519 ecdsa; do
        dropbearkey -t "$t" -f "/etc/dropbear/dropbear_${t}_host_key" >/dev/null 2>&1
    done
    # -s: keys only, no passwords. -R would make missing keys on demand; the keys exist.
    dropbear -s -p 22 -P /run/dropbear.pid \
        -r /etc/dropbear/dropbear_ed25519_host_key -r /etc/dropbear/dropbear_ecdsa_host_key \
        && say "dropbear listening on port 22" || say "dropbear did not start"
) &

# ACPI power button (QMP system_powerdown) → /etc/acpi/PWRF/00000080 → poweroff -f.
# Its default log file is in /var/log, which does not exist here; without a log acpid exits.
acpid -c /etc/acpi -l /run/acpid.log -p /run/acpid.pid && say "acpid started"

# User data that starts with #! runs once, in the background, its output on the console.
# An interpreter the image lacks (#!/bin/bash) falls back to sh.
if [ -s "$MD/user_data" ] && [ "$(head -c 2 "$MD/user_data")" = '#!' ]; then
    chmod 755 "$MD/user_data"
    interp=$(head -n 1 "$MD/user_data" | sed 's/^#![[:space:]]*//; s/[[:space:]].*//')
    say "running user data ($interp)"
    if [ -x "$interp" ]; then "$MD/user_data" & else sh "$MD/user_data" & fi
elif [ -s "$MD/user_data" ]; then
    say "user data is not a script (no #!); not run"
fi

say "boot finished in $(cut -d' ' -f1 /proc/uptime)s"

# A login shell on the serial console, started again whenever it exits. As PID 1 this loop's
# waits also reap orphaned processes.
while true; do
    setsid cttyhack sh -l
    sleep 1
done
"""#

    /// /etc/nimbus/json.awk: metadata JSON to "path<TAB>value" lines for the init script.
    static let jsonAWK = #"""
# Flattens one JSON document into lines "path<TAB>value": object members join with "/",
# array elements are numbered from 0, e.g. "public_keys/mykey", "keys/0/data".
# Only scalars are printed. Strings are unescaped; control escapes (\n, \t, …) become a space so
# every value stays on its line, and \uXXXX is kept as written.
function fail(msg) { printf "json: %s at offset %d\n", msg, pos > "/dev/stderr"; exit 1 }
function ws() { while (pos <= n && index(" \t\r\n", substr(s, pos, 1))) pos++ }
function str(   out, c, e) {
    pos++                                  # the opening quote
    out = ""
    while (pos <= n) {
        c = substr(s, pos, 1)
        if (c == "\"") { pos++; return out }
        if (c == "\\") {
            e = substr(s, pos + 1, 1); pos += 2
            if (index("ntrbf", e)) out = out " "
            else if (e == "u") { out = out "\\u" substr(s, pos, 4); pos += 4 }
            else out = out e               # \" \\ \/
            continue
        }
        out = out c; pos++
    }
    fail("unterminated string")
}
function value(path,   c, key, i, start) {
    ws(); c = substr(s, pos, 1)
    if (c == "{") {
        pos++; ws()
        if (substr(s, pos, 1) == "}") { pos++; return }
        while (1) {
            ws(); if (substr(s, pos, 1) != "\"") fail("expected a key")
            key = str(); ws()
            if (substr(s, pos, 1) != ":") fail("expected :")
            pos++
            value(path == "" ? key : path "/" key)
            ws(); c = substr(s, pos, 1); pos++
            if (c == "}") return
            if (c != ",") fail("expected , or }")
        }
    }
    if (c == "[") {
        pos++; ws(); i = 0
        if (substr(s, pos, 1) == "]") { pos++; return }
        while (1) {
            value(path == "" ? i : path "/" i); i++
            ws(); c = substr(s, pos, 1); pos++
            if (c == "]") return
            if (c != ",") fail("expected , or ]")
        }
    }
    if (c == "\"") { print path "\t" str(); return }
    start = pos
    while (pos <= n && !index(",}] \t\r\n", substr(s, pos, 1))) pos++
    if (pos == start) fail("unexpected character")
    print path "\t" substr(s, start, pos - start)
}
{ s = s $0 "\n" }
END { n = length(s); pos = 1; value(""); }
"""#

    /// /usr/bin/curl: curl's plain GET and form POST over busybox's wget, for tools that expect
    /// CirrOS's curl (Tempest reads and writes the metadata service with it). Other options are
    /// refused, saying so.
    static let curl = #"""
#!/bin/sh
# curl [-s] [-S] [-f] [-L] [-k] [-X GET|POST] [-d DATA] URL over busybox's wget; nothing more.
url="" data="" post=""
while [ $# -gt 0 ]; do
    case "$1" in
        -[sSfLk]|-[sSfLk][sSfLk]|-[sSfLk][sSfLk][sSfLk]) ;;
        -X) [ "$2" = POST ] && post=1 || [ "$2" = GET ] || { echo "curl: -X $2: only GET and POST" >&2; exit 2; }; shift ;;
        -d|--data) data="$2" post=1; shift ;;
        -*) echo "curl: $1: this image's curl does plain GETs and POSTs only (busybox wget underneath)" >&2; exit 2 ;;
        *) [ -z "$url" ] || { echo "curl: one URL only" >&2; exit 2; }; url="$1" ;;
    esac
    shift
done
[ -n "$url" ] || { echo "curl: no URL given" >&2; exit 2; }
if [ -n "$post" ]; then exec wget -q -O - --post-data "$data" "$url"; fi
exec wget -q -O - "$url"
"""#

    /// /usr/bin/sudo: root's sudo, which runs the command (the image's users log in as root in
    /// place of CirrOS's passwordless sudo); anyone else is refused.
    static let sudo = #"""
#!/bin/sh
[ "$(id -u)" = 0 ] || { echo "sudo: this image has no sudo for users other than root (log in as root)" >&2; exit 1; }
exec "$@"
"""#

    /// /etc/nimbus/udhcpc.sh, run by busybox udhcpc on lease events.
    static let udhcpcScript = #"""
#!/bin/sh
# udhcpc's lease hook: the address, the MTU (option 26), routes from option 121 (classless
# static routes, which carry the metadata service's route) or else the router option, and DNS.
case "$1" in
    deconfig)
        ip -4 addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        if ! ip -4 addr show dev "$interface" | grep -q "inet $ip/"; then
            ip -4 addr flush dev "$interface"
            ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
        fi
        [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
        if [ -n "$staticroutes" ]; then
            set -- $staticroutes
            while [ $# -ge 2 ]; do
                if [ "$2" = 0.0.0.0 ]; then
                    ip route replace "$1" dev "$interface"
                else
                    ip route replace "$1" via "$2" dev "$interface"
                fi
                shift 2
            done
        elif [ -n "$router" ]; then
            set -- $router
            ip route replace default via "$1" dev "$interface"
        fi
        : > /etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
        [ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
        ;;
esac
exit 0
"""#

    /// /etc/acpi/PWRF/00000080: what busybox acpid runs for the ACPI power button, which is
    /// how QMP `system_powerdown` (and so a graceful stop) reaches the guest.
    static let powerButton = """
        #!/bin/sh
        echo "NIMBUS-GUEST: power button pressed, powering off" > /dev/console
        poweroff -f

        """

    /// The login user for SSH keys is nimbus (uid 1000); root may log in by key too. "*" is a
    /// password nothing matches, which dropbear (unlike "!") does not treat as a locked account.
    static let passwd = """
        root:*:0:0:root:/root:/bin/sh
        nimbus:*:1000:1000:Nimbus test user:/home/nimbus:/bin/sh

        """
    static let group = """
        root:x:0:
        tty:x:5:
        nimbus:x:1000:

        """
    /// dropbear only lets in users whose shell is listed here.
    static let shells = """
        /bin/sh
        /bin/ash

        """
    static let hosts = "127.0.0.1 localhost\n"
    static let profile = #"""
        export PATH=/usr/sbin:/usr/bin:/sbin:/bin
        PS1='\u@\h:\w\$ '

        """#
}
