#include "hv/qemu_command.hpp"

#include "hv/option_escape.hpp"

#include <fstream>
#include <sstream>

namespace vmrt::hv {
namespace {

std::string esc(const std::filesystem::path& p) { return qemu_option_value(p.string()); }

std::string cache_option(disk_cache c) {
    switch (c) {
    case disk_cache::automatic:
        return {};
    case disk_cache::none:
        return ",cache=none";
    case disk_cache::writeback:
        return ",cache=writeback";
    case disk_cache::writethrough:
        return ",cache=writethrough";
    case disk_cache::unsafe:
        return ",cache=unsafe";
    }
    return {};
}

void add(std::vector<std::string>& a, std::initializer_list<std::string> more) { a.insert(a.end(), more); }

// One block device: a -drive backend plus its frontend (virtio-blk or NVMe).
void add_disk(std::vector<std::string>& a, const disk_spec& d, const std::string& id) {
    std::string drive = "file=" + esc(d.path) + ",if=none,id=" + id + ",format=" + sniff_disk_format(d.path) +
                        (d.read_only ? ",readonly=on" : "") + cache_option(d.cache);
    add(a, {"-drive", drive});
    if (d.interface == disk_interface::nvme)
        add(a, {"-device", "nvme,drive=" + id + ",serial=vmrt-" + id});
    else
        add(a, {"-device", "virtio-blk-pci,drive=" + id});
}

}  // namespace

std::string default_qemu_cmdline(const std::string& accelerator) {
    std::string c = "console=ttyS0 panic=-1 quiet";
    if (accelerator == "tcg") c += " no_timer_check";
    return c;
}

std::string sniff_disk_format(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    return in.gcount() == 4 && magic[0] == 'Q' && magic[1] == 'F' && magic[2] == 'I' &&
                   static_cast<unsigned char>(magic[3]) == 0xfb
               ? "qcow2"
               : "raw";
}

std::string choose_accelerator(const std::filesystem::path& dev_kvm, const std::filesystem::path& cpuinfo) {
    std::error_code ec;
    if (!std::filesystem::exists(dev_kvm, ec)) return "tcg";
    std::ifstream in(cpuinfo);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("flags", 0) != 0) continue;
        std::istringstream words(line);
        for (std::string w; words >> w;)
            if (w == "vmx" || w == "svm") return "kvm";
        return "tcg";  // the first CPU's flags speak for all
    }
    return "tcg";
}

boost::system::result<std::vector<std::string>, spec_error> build_qemu_args(const vm_spec& s,
                                                                            const qemu_runtime& rt) {
    auto refuse = [](std::string field, std::string why) {
        return spec_error{std::move(field), std::move(why)};
    };
    std::vector<std::string> a;
    try {
        add(a, {"-name", "guest=" + qemu_option_value(s.name) + ",debug-threads=on"});
        add(a, {"-machine", "pc", "-accel", rt.accelerator});
        if (rt.accelerator == "kvm") add(a, {"-cpu", "host"});
        add(a, {"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"});
        // maxcpus makes room for hot-added vCPUs (query-hotpluggable-cpus lists the free slots).
        add(a,
            {"-smp", s.max_cpus ? "cpus=" + std::to_string(s.cpus) + ",maxcpus=" + std::to_string(*s.max_cpus)
                                : std::to_string(s.cpus)});
        add(a, {"-m", std::to_string(s.memory_mib) + "M"});
        if (!s.shared_dirs.empty()) {
            // vhost-user-fs needs guest RAM that the virtiofsd sidecar can map: shared memfd.
            add(a,
                {"-object", "memory-backend-memfd,id=mem,size=" + std::to_string(s.memory_mib) + "M,share=on",
                 "-numa", "node,memdev=mem"});
        }

        if (s.boot == boot_mode::uefi) {
            if (rt.uefi_code.empty() || rt.uefi_vars.empty())
                return refuse("firmware", "internal: uefi boot without prepared flash images");
            add(a, {"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + esc(rt.uefi_code)});
            add(a, {"-drive", "if=pflash,format=raw,unit=1,file=" + esc(rt.uefi_vars)});
        } else if (s.efi_variable_store) {
            return refuse("efi_variable_store", "an EFI variable store needs \"boot\": \"uefi\"");
        }
        if (!s.kernel.empty()) {
            add(a, {"-kernel", s.kernel.string()});
            if (s.initramfs) add(a, {"-initrd", s.initramfs->string()});
            add(a, {"-append", s.cmdline.value_or(default_qemu_cmdline(rt.accelerator))});
        } else if (s.initramfs || s.cmdline) {
            return refuse(s.initramfs ? "initramfs" : "cmdline", "needs a kernel (direct boot)");
        }

        // Console: append, because the manager creates the file and is already following it.
        add(a, {"-chardev", "file,id=serial0,append=on,path=" + esc(s.serial_log), "-serial",
                "chardev:serial0"});
        if (rt.qmp_fd < 0) return refuse("", "internal: no QMP socket");
        add(a, {"-chardev", "socket,id=qmp,fd=" + std::to_string(rt.qmp_fd), "-mon",
                "chardev=qmp,mode=control"});

        int disk = 0;
        if (s.root_disk) add_disk(a, *s.root_disk, "disk" + std::to_string(disk++));
        if (s.seed_iso) add_disk(a, disk_spec{.path = *s.seed_iso, .read_only = true}, "seed");
        for (auto& d : s.data_disks) add_disk(a, d, "disk" + std::to_string(disk++));

        for (std::size_t i = 0; i < s.networks.size(); ++i) {
            const auto& n = s.networks[i];
            const std::string id = "net" + std::to_string(i);
            const int fd = i < rt.nic_fds.size() ? rt.nic_fds[i] : -1;
            const std::string field = "networks[" + std::to_string(i) + "]";
            switch (n.kind) {
            case nic_kind::tap:
                // No vhost: this host has no /dev/vhost-net, and vhost=on makes QEMU abort.
                if (fd >= 0)
                    add(a, {"-netdev", "tap,id=" + id + ",fd=" + std::to_string(fd)});
                else
                    add(a, {"-netdev", "tap,id=" + id + ",ifname=" + qemu_option_value(n.tap_name) +
                                           ",script=no,downscript=no"});
                break;
            case nic_kind::fd_dgram:
                if (fd < 0) return refuse(field + ".fd", "a datagram NIC needs an inherited socket");
                add(a, {"-netdev", "dgram,id=" + id + ",local.type=fd,local.str=" + std::to_string(fd)});
                break;
            case nic_kind::user:
                // restrict=on keeps every packet inside QEMU: the guest reaches the virtual
                // gateway and nothing beyond it.
                add(a, {"-netdev", "user,id=" + id + (n.isolated ? ",restrict=on" : "")});
                break;
            case nic_kind::fd_stream:
                if (fd < 0) return refuse(field + ".fd", "a stream NIC needs an inherited socket");
                add(a, {"-netdev", "stream,id=" + id + ",addr.type=fd,addr.str=" + std::to_string(fd)});
                break;
            }
            auto mac = n.mac.value_or(default_mac(s.name, i));
            add(a, {"-device", "virtio-net-pci,netdev=" + id + ",mac=" + mac.to_string() + ",romfile="});
        }

        for (std::size_t i = 0; i < s.shared_dirs.size(); ++i) {
            // One vhost-user-fs device serves one directory per tag; several directories behind
            // a tag are an apple-vz feature (VZMultipleDirectoryShare).
            if (!s.shared_dirs[i].share_name.empty())
                return refuse("shared_dirs[" + std::to_string(i) + "].share_name",
                              "QEMU's virtiofs device exports one directory per tag; give each directory "
                              "its own tag (several directories behind one tag need the apple-vz backend)");
            if (i >= rt.virtiofs_sockets.size())
                return refuse("shared_dirs", "internal: no virtiofsd socket");
            const std::string id = "fs" + std::to_string(i);
            add(a, {"-chardev", "socket,id=" + id + ",path=" + esc(rt.virtiofs_sockets[i]), "-device",
                    "vhost-user-fs-pci,chardev=" + id + ",tag=" + qemu_option_value(s.shared_dirs[i].tag)});
        }

        if (s.balloon)
            add(a, {"-device", std::string("virtio-balloon-pci,id=balloon0,deflate-on-oom=") +
                                   (s.balloon->deflate_on_oom ? "on" : "off") + ",free-page-reporting=" +
                                   (s.balloon->free_page_reporting ? "on" : "off")});
        // Entropy for the guest's early boot (key generation, ASLR seeds): always present.
        add(a, {"-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0"});

        if (s.control_channel) {
            if (rt.control_listen_fd < 0) return refuse("control_channel", "internal: no control socket");
            // QEMU listens on vmrt's pre-bound socket: it exists before QEMU runs, so a client can
            // connect as soon as the VM is reported up, with no wait for a socket file.
            add(a, {"-device", "virtio-serial-pci,id=vmrt-serial", "-chardev",
                    "socket,id=vmrt-control,server=on,wait=off,fd=" + std::to_string(rt.control_listen_fd),
                    "-device",
                    std::string("virtserialport,bus=vmrt-serial.0,chardev=vmrt-control,name=") +
                        control_port_name});
        }
        if (s.vsock) add(a, {"-device", "vhost-vsock-pci,guest-cid=" + std::to_string(s.vsock->cid)});
        if (s.machine_id) {
            if (s.machine_id->size() != 16)
                return refuse("machine_id", "QEMU takes a 16-byte machine id (the SMBIOS system UUID)");
            static const char* hex = "0123456789abcdef";
            std::string uuid;
            for (std::size_t i = 0; i < 16; ++i) {
                if (i == 4 || i == 6 || i == 8 || i == 10) uuid += '-';
                uuid += hex[(*s.machine_id)[i] >> 4];
                uuid += hex[(*s.machine_id)[i] & 15];
            }
            add(a, {"-uuid", uuid});
        }
        if (s.rosetta) return refuse("rosetta", "Rosetta exists only on Apple silicon (apple-vz backend)");
        // Deferred, so that the driver can ask for migration events before the state streams in.
        if (rt.incoming_fd >= 0) add(a, {"-incoming", "defer"});
    } catch (const error& e) {
        return refuse(e.diag().field, e.what());
    }
    return a;
}

}  // namespace vmrt::hv
