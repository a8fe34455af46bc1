#include "image/guest_init.hpp"

namespace vmrt::image {

// Kept small on purpose: everything here runs under TCG at a few hundred MIPS, and every line is
// part of the guest's contract with the host (markers on the console, vmrs.* parameters).
std::string_view guest_init_script() {
    return R"INIT(#!/bin/sh
# /init of vmrt's default guest: PID 1, run by busybox sh. It mounts the kernel file systems,
# loads the drivers, applies the vmrs.* kernel parameters, reports on the console and then
# idles. PID 1 must never exit (the kernel would panic), so nothing here uses `set -e`.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

# The kernel mounts nothing for us (DEVTMPFS_MOUNT is off in the cloud kernel).
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
# With console=ttyS0 the console is the serial port: write everything there, once.
exec </dev/null >/dev/console 2>&1

# Every virtio driver is a module. A driver without its device loads anyway; failures are not
# fatal (the guest may simply lack that device), so stay quiet about them.
while read -r module; do
    modprobe -q "$module" 2>/dev/null
done </etc/vmrs-modules

# vmrs.KEY=VALUE words of the kernel command line (the kernel keeps dotted words away from
# init's environment, so /proc/cmdline is the only place to find them).
set -f
for word in $(cat /proc/cmdline); do
    case "$word" in
    vmrs.ip=*) ip=${word#*=} ;;
    vmrs.gw=*) gw=${word#*=} ;;
    vmrs.hostname=*) name=${word#*=} ;;
    vmrs.ping=*) peer=${word#*=} ;;
    vmrs.virtiofs=*) shares=${word#*=} ;;
    vmrs.cidata=*) cidata=${word#*=} ;;
    vmrs.counter=*) counter=${word#*=} ;;
    vmrs.meminfo=*) meminfo=${word#*=} ;;
    vmrs.datadisk=*) datadisk=${word#*=} ;;
    vmrs.datawrite=*) datawrite=${word#*=} ;;
    vmrs.virtiofs_probe=*) probe_tag=${word#*=} ;;
    vmrs.lsdev=*) lsdev=${word#*=} ;;
    vmrs.noacpid=*) noacpid=${word#*=} ;;
    vmrs.report=*) report=${word#*=} ;;
    vmrs.root=*) newroot=${word#*=} ;;
    esac
done
set +f

[ -n "$name" ] && hostname "$name"

# The first Ethernet interface (ARPHRD_ETHER = 1): virtio-net is eth0 today, but the name is
# not a promise.
first_ethernet() {
    for dev in /sys/class/net/*; do
        if [ "$(cat "$dev/type" 2>/dev/null)" = 1 ]; then
            echo "${dev##*/}"
            return 0
        fi
    done
    return 1
}

# READY reports the address the guest was given (or "-"); a guest without a NIC still gets
# ready, and says on the line before that nothing could take the address.
ip link set lo up
address=-
if [ -n "$ip" ]; then
    address=${ip%%/*}
    # No waiting: modprobe virtio_net returns after the probe, with the interface registered.
    netdev=$(first_ethernet)
    if [ -n "$netdev" ] && ip addr add "$ip" dev "$netdev" && ip link set "$netdev" up; then
        [ -n "$gw" ] && ip route add default via "$gw"
    else
        echo "vmrs: cannot configure vmrs.ip=$ip (no Ethernet interface?)"
    fi
fi

# The cloud-init seed: an ISO 9660 disk whose volume label ("cidata") sits at byte 32808.
if [ "$cidata" = 1 ]; then
    seed=
    for disk in /dev/vd? /dev/sr?; do
        [ -b "$disk" ] || continue
        label=$(dd if="$disk" bs=1 skip=32808 count=6 2>/dev/null | tr A-Z a-z)
        [ "$label" = cidata ] || continue
        mkdir -p /mnt/cidata
        mount -t iso9660 -o ro "$disk" /mnt/cidata && seed=$disk && break
    done
    if [ -n "$seed" ]; then
        echo VMRS_CIDATA_META_BEGIN
        while IFS= read -r line || [ -n "$line" ]; do
            printf '%s\n' "$line"
        done </mnt/cidata/meta-data
        echo VMRS_CIDATA_META_END
    else
        echo "vmrs: no cidata disk found"
    fi
fi

# Shared directories: vmrs.virtiofs=TAG[:DIR][,TAG2[:DIR2]...], DIR defaults to /mnt/TAG.
if [ -n "$shares" ]; then
    saved_ifs=$IFS
    IFS=,
    set -f
    set -- $shares
    IFS=$saved_ifs
    set +f
    for share in "$@"; do
        tag=${share%%:*}
        dir=/mnt/$tag
        case "$share" in *:*) dir=${share#*:} ;; esac
        if mkdir -p "$dir" && mount -t virtiofs "$tag" "$dir"; then
            echo "vmrs: virtiofs $tag mounted on $dir"
            [ "$tag" = "$probe_tag" ] && probe_dir=$dir
        else
            echo "vmrs: virtiofs $tag: mount on $dir failed"
        fi
    done
fi

# vmrs.virtiofs_probe=TAG: one read and one write through a mounted share, so that the host can
# see both directions work (it put hello.txt there and looks for from-guest.txt).
if [ -n "$probe_tag" ]; then
    if [ -z "$probe_dir" ]; then
        echo "vmrs: virtiofs probe: $probe_tag is not mounted"
        echo "VMRS_VIRTIOFS_WROTE failed: $probe_tag is not mounted"
    else
        if content=$(cat "$probe_dir/hello.txt" 2>&1); then
            printf 'VMRS_VIRTIOFS_READ %s\n' "$content"
        else
            echo "vmrs: virtiofs probe: cannot read $probe_dir/hello.txt: $content"
        fi
        if failure=$({ echo "written by the guest" >"$probe_dir/from-guest.txt"; } 2>&1) && sync; then
            echo "VMRS_VIRTIOFS_WROTE ok"
        else
            echo "VMRS_VIRTIOFS_WROTE failed: ${failure:-sync failed}"
        fi
    fi
fi

# A read-only disk cannot be mounted read-write (busybox mount may fall back to read-only by
# itself): mount it read-only explicitly, so that vmrs.datawrite can report the refused write.
if [ -n "$datadisk" ]; then
    mkdir -p /mnt/data
    datamount=
    if mount -t ext4 "$datadisk" /mnt/data; then
        datamount=rw
    elif mount -t ext4 -o ro "$datadisk" /mnt/data; then
        datamount=ro
    fi
    # /proc/mounts tells how it really ended up, whichever way it got there.
    if [ -n "$datamount" ]; then
        grep -q "^$datadisk /mnt/data [^ ]* ro[, ]" /proc/mounts && datamount=ro
        echo "vmrs: $datadisk mounted on /mnt/data ($datamount)"
    else
        echo "vmrs: data disk $datadisk: mount failed"
    fi
fi

# vmrs.datawrite=TOKEN: TOKEN goes to /mnt/data/hello.txt and to the disk (sync), so that the
# host can find it in the image after the VM is gone.
if [ -n "$datawrite" ]; then
    if [ -z "$datamount" ]; then
        echo "VMRS_DATAWRITE failed: no data disk mounted (vmrs.datadisk)"
    elif failure=$({ printf '%s\n' "$datawrite" >/mnt/data/hello.txt; } 2>&1) && sync; then
        echo "VMRS_DATAWRITE ok"
    else
        echo "VMRS_DATAWRITE failed: ${failure:-sync failed} (mounted $datamount)"
    fi
fi

# vmrs.lsdev=1: every virtio device a driver is bound to, as VMRS_DEV <driver> <device>, so
# that the host can check which of the devices it configured the guest actually took up.
if [ "$lsdev" = 1 ]; then
    for bound in /sys/bus/virtio/drivers/*/virtio*; do
        [ -e "$bound" ] || continue
        driver=${bound%/*}
        echo "VMRS_DEV ${driver##*/} ${bound##*/}"
    done
fi

# vmrs.report=1: what the guest was given, one VMRS_* line each, so that the host can check the
# spec reached it: vCPUs, firmware, each Ethernet address, each disk (512-byte sectors, read-only).
if [ "$report" = 1 ]; then
    echo "VMRS_CPUS $(grep -c ^processor /proc/cpuinfo)"
    if [ -d /sys/firmware/efi ]; then echo "VMRS_FIRMWARE efi"; else echo "VMRS_FIRMWARE bios"; fi
    for dev in /sys/class/net/*; do
        [ "$(cat "$dev/type" 2>/dev/null)" = 1 ] && echo "VMRS_MAC ${dev##*/} $(cat "$dev/address")"
    done
    for disk in /sys/block/*; do
        case "${disk##*/}" in loop* | ram*) continue ;; esac
        echo "VMRS_BLOCK ${disk##*/} $(cat "$disk/size") ro=$(cat "$disk/ro")"
    done
    echo "VMRS_MEMTOTAL $(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"
fi

# vCPUs the host hot-adds arrive offline: bring them up (udev's job on a full distribution), and
# report every change of the online count (the host's unplug shows as an offline event).
uevent sh -c '
    [ "$SUBSYSTEM" = cpu ] || exit 0
    case "$ACTION" in
    add) echo 1 >"/sys$DEVPATH/online" ;;
    online | offline) echo "VMRS_CPUS $(grep -c ^processor /proc/cpuinfo)" ;;
    esac' </dev/null >/dev/console 2>&1 &

# The control channel (virtio-serial port org.vmrt.control): a line protocol, one answer per
# request. Reads return end-of-file while no host program is connected, hence the slow retry.
control_port=
for port in /sys/class/virtio-ports/*; do
    [ "$(cat "$port/name" 2>/dev/null)" = org.vmrt.control ] && control_port=/dev/${port##*/}
done
if [ -n "$control_port" ]; then
    (
        while true; do
            if exec 3<>"$control_port"; then
                while IFS= read -r request <&3; do
                    case "$request" in
                    ping) echo pong ;;
                    ready) echo "ready $address" ;;
                    cpus) echo "cpus $(grep -c ^processor /proc/cpuinfo)" ;;
                    hostname) echo "hostname $(hostname)" ;;
                    *) echo "error unknown request" ;;
                    esac >&3
                done
                exec 3>&-
            fi
            sleep 1
        done
    ) &
fi

# The ACPI power button (QMP system_powerdown) reaches us through button.ko + evdev.ko; acpid
# then runs /etc/acpi/PWRF/00000080. It scans /dev/input at start, hence after the modules.
if [ "$noacpid" != 1 ]; then
    acpid -c /etc/acpi -l /run/acpid.log -p /run/acpid.pid
    # Ready only once acpid holds the input device open: evdev does not keep events for readers
    # that are not there yet, so a power button pressed right after READY would be lost.
    tries=0
    while [ $tries -lt 100 ]; do
        pid=$(cat /run/acpid.pid 2>/dev/null)
        if [ -n "$pid" ] && ls -l /proc/$pid/fd 2>/dev/null | grep -q /dev/input/event; then break; fi
        sleep 0.05
        tries=$((tries + 1))
    done
    [ $tries -lt 100 ] || echo "vmrs: acpid did not open an input device; the power button may be ignored"
fi

# vmrs.root=DEV: the guest's system is on DEV (an ext4 disk, e.g. made from an OCI image): mount
# it and hand PID 1 over to its /sbin/init, which reports readiness itself (the address is passed
# in VMRS_ADDRESS). Without a usable /sbin/init there, the guest goes on from the initramfs.
if [ -n "$newroot" ]; then
    mkdir -p /newroot
    if mount -t ext4 "$newroot" /newroot; then
        if [ -x /newroot/sbin/init ] || [ -L /newroot/sbin/init ]; then
            echo "vmrs: switching to the root file system on $newroot"
            export VMRS_ADDRESS="$address"
            exec switch_root /newroot /sbin/init
        fi
        echo "vmrs: $newroot has no /sbin/init; staying on the initramfs"
        umount /newroot
    else
        echo "vmrs: cannot mount $newroot as the root file system"
    fi
fi

echo "VMRS_READY $address"

# vmrs.meminfo=1: print MemTotal whenever it changes, so that the host can see a balloon resize
# (an inflating balloon without deflate-on-oom takes its pages out of MemTotal).
if [ "$meminfo" = 1 ]; then
    (
        last=
        while true; do
            total=$(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)
            if [ "$total" != "$last" ]; then
                echo "VMRS_MEMTOTAL $total"
                last=$total
            fi
            sleep 0.5
        done
    ) &
fi

if [ "$counter" = 1 ]; then
    (
        n=0
        while true; do
            echo "VMRS_COUNTER $n"
            n=$((n + 1))
            sleep 1
        done
    ) &
fi

# In the background, so that READY is not delayed: the peer may still be booting, so wait
# (up to ~30 s) until it answers once, then report a short series.
if [ -n "$peer" ]; then
    (
        tries=0
        until ping -c 1 -W 1 "$peer" >/dev/null 2>&1 || [ $tries -ge 30 ]; do
            tries=$((tries + 1))
        done
        summary=$(ping -c 3 -W 2 "$peer" 2>&1 | grep 'packets transmitted')
        echo "VMRS_PING $peer: ${summary:-no reply}"
    ) &
fi

# PID 1 idles forever; waiting on sleep also reaps orphans that the kernel hands to us.
while true; do
    sleep 3600
done
)INIT";
}

std::string_view guest_powerbutton_script() {
    return R"ACPI(#!/bin/sh
# Power button (run by busybox acpid): say so on the console, flush, and power off now.
# `poweroff -f` because plain poweroff would only signal PID 1, which is a shell script.
echo VMRS_POWERDOWN >/dev/console
sync
poweroff -f
)ACPI";
}

const std::vector<std::string_view>& guest_required_applets() {
    static const std::vector<std::string_view> applets{
        "sh",       "mount", "umount", "modprobe", "insmod", "ip",    "ifconfig", "route",  "sleep",
        "cat",      "echo",  "mkdir",  "poweroff", "acpid",  "ping",  "ls",       "sync",   "dmesg",
        "hostname", "grep",  "sed",    "tr",       "cut",    "head",  "tail",     "od",     "dd",
        "mknod",    "ln",    "chmod",  "wc",       "date",   "uname", "printf",   "uevent", "switch_root"};
    return applets;
}

}  // namespace vmrt::image
