// The project's default guest ("the embedded default"): a Debian cloud kernel plus an initramfs
// that vmrt assembles itself (busybox, the virtio modules, a small /init), cached on disk.
//
// How it is made (build_default_guest):
//  1. the newest `linux-image-6.1.0-N-cloud-amd64` package known to apt is fetched with
//     `apt-get download` into a package cache (never installed on the host);
//  2. its data archive is unpacked with libarchive (only the kernel and lib/modules/<kver>/);
//  3. `depmod` resolves the dependency closure of the modules the guest needs;
//  4. the initramfs (newc cpio, gzip) is written by vmrt with libarchive: the host's static
//     busybox with its applet links, the modules with their own modules.dep, /init and an ACPI
//     power-button handler. Fixed mtimes, owners and entry order make it reproducible.
//
// The guest's contract with the host (all of it on the serial console, console=ttyS0):
//   kernel command line (words of /proc/cmdline)     console output
//   vmrs.ip=ADDR/PREFIX   first Ethernet interface     VMRS_READY <ADDR or ->   (once, when set up;
//                                                        ADDR even if no NIC could take it)
//   vmrs.gw=ADDR          default route                VMRS_PING <peer>: <ping summary line>
//   vmrs.hostname=NAME                                 VMRS_CIDATA_META_BEGIN / ... / VMRS_CIDATA_META_END
//   vmrs.ping=PEER        pings PEER after READY       VMRS_COUNTER <n>         (every second)
//   vmrs.virtiofs=TAG[:DIR][,TAG2[:DIR2]...]  mounted on DIR (default /mnt/TAG)
//   vmrs.cidata=1         mounts the ISO 9660 disk labelled "cidata" on /mnt/cidata and prints meta-data
//   vmrs.counter=1        a background counter (proves that a restored guest runs on)
//   vmrs.meminfo=1        after READY: VMRS_MEMTOTAL <kB> whenever MemTotal changes (balloon)
//   vmrs.datadisk=/dev/vdX  ext4, mounted read-write on /mnt/data (read-only if the disk is)
//   vmrs.datawrite=TOKEN  writes TOKEN + newline to    VMRS_DATAWRITE ok | failed: <reason>
//                         /mnt/data/hello.txt, syncs     (failed also when the disk is read-only)
//   vmrs.virtiofs_probe=TAG  reads hello.txt of the     VMRS_VIRTIOFS_READ <its content>
//                         mounted share TAG, writes     VMRS_VIRTIOFS_WROTE ok | failed: <reason>
//                         from-guest.txt ("written by the guest") next to it, syncs
//   vmrs.lsdev=1          lists bound virtio devices    VMRS_DEV <driver> <device>  (one per device,
//                                                        e.g. "VMRS_DEV virtio_balloon virtio2")
//   vmrs.noacpid=1        no power-button handler (the guest then ignores system_powerdown)
//   vmrs.report=1         what the guest was given:     VMRS_CPUS <online vCPUs>
//                                                        VMRS_FIRMWARE efi | bios
//                                                        VMRS_MAC <interface> <address>  (each Ethernet NIC)
//                                                        VMRS_BLOCK <disk> <512-byte sectors> ro=<0|1>
//                                                        VMRS_MEMTOTAL <kB>
// Every probe above reports before VMRS_READY: once a VM is Ready, its console holds the results.
// Always, without a parameter:
//   vCPU hotplug          hot-added vCPUs are brought   VMRS_CPUS <online vCPUs>  (on every change)
//                         online
//   control channel       on the virtio-serial port "org.vmrt.control", a line protocol, one answer
//                         per request: "ping" -> "pong", "ready" -> "ready <ADDR>", "cpus" ->
//                         "cpus <n>", "hostname" -> "hostname <name>", else "error unknown request"
// The ACPI power button prints VMRS_POWERDOWN, syncs and powers off at once. Other diagnostics
// are lines starting with "vmrs: ". Cached builds mean the guest, and this contract, only change
// with the image's inputs (see guest_image_format_version).
#pragma once

#include <vmrt/error.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::image {

/// Bumped whenever the way the image is assembled changes, so that older cached images are
/// not reused.
inline constexpr int guest_image_format_version = 1;

/// The kernel command line the default guest is meant to run with (append vmrs.* words to it):
/// serial console, no reboot loop on panic, quiet, and no timer check (it starves under a
/// loaded TCG host and hangs the boot).
inline constexpr std::string_view default_guest_cmdline = "console=ttyS0 panic=-1 quiet no_timer_check";

/// A built default guest. Paths point into the cache; treat the files as read-only.
struct guest_image {
    std::filesystem::path directory;              ///< <data_dir>/guest/<kver>-<inputs hash>
    std::filesystem::path kernel;                 ///< bzImage (also bootable with QEMU -kernel)
    std::filesystem::path initramfs;              ///< gzip-compressed newc cpio
    std::string kernel_version;                   ///< "6.1.0-56-cloud-amd64"
    std::string kernel_package;                   ///< the Debian package it came from
    std::string kernel_sha256, initramfs_sha256;  ///< lowercase hex
    std::vector<std::string> modules;             ///< modules in the initramfs, in load order
    bool reused = false;                          ///< true: found in the cache, nothing was built
};

struct guest_build_options {
    /// Cache root; empty: default_data_dir(). The image goes to data_dir/guest/.
    std::filesystem::path data_dir;
    /// Where downloaded kernel packages are kept; empty: data_dir/cache/packages. Share it
    /// between data dirs to download a kernel once.
    std::filesystem::path package_cache;
    /// Debian package to take the kernel from; empty: the newest linux-image-6.1.0-N-cloud-amd64.
    std::string kernel_package;
    /// Static busybox for the initramfs (from the busybox-static package).
    std::filesystem::path busybox = "/bin/busybox";
    /// Modules loaded at boot in addition to default_guest_modules() (with their dependencies),
    /// e.g. {"ata_piix", "sr_mod"} for an IDE cd-rom.
    std::vector<std::string> extra_modules;
    /// Rebuild even if a valid cached image exists (the downloaded package is still reused).
    bool force = false;
    /// Called with one line per step ("downloading linux-image-..."); may be empty.
    std::function<void(std::string)> progress;
};

/// $VMRT_DATA_DIR if set; else /var/lib/vmrt for root; else $XDG_DATA_HOME/vmrt or
/// ~/.local/share/vmrt.
std::filesystem::path default_data_dir();

/// The modules every default guest loads: virtio (PCI and MMIO), net, blk, console, rng,
/// balloon, virtiofs, vsock, the ACPI power button with evdev, and iso9660 for cidata disks.
const std::vector<std::string>& default_guest_modules();

/// Builds the default guest, or returns the cached one when its inputs (kernel package,
/// busybox, /init, module list, format version) are unchanged and its files are intact.
///
/// Synchronous and slow on a cache miss (apt-get, a ~27 MB download the first time, unpacking
/// ~100 MB of modules, depmod): call it from a worker thread, not from an io_context thread.
/// Concurrent calls (threads or processes) on one data_dir are serialised by a lock file.
/// Needs apt-get/apt-cache (a Debian host with the bookworm repositories) and depmod (kmod);
/// runs `apt-get update` once if apt knows no cloud kernel. Without apt, a kernel package
/// already in the package cache is used.
///
/// Throws vmrt::error: errc::not_found (no kernel package), errc::unsupported (busybox not
/// static, a module or applet missing), errc::protocol_error (a malformed or hostile package),
/// errc::timeout (a tool hung), boost::system::errc::io_error (a tool failed; the message ends
/// with its output), or the system error of a failed file operation.
guest_image build_default_guest(const guest_build_options& options = {});

}  // namespace vmrt::image
